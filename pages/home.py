import streamlit as st

st.title("Drift Lab")
st.write("See and feel how drifting models learn.")
