"""Drift Lab: the Streamlit entry point (`streamlit run app.py`). Pages are listed explicitly."""
import streamlit as st

st.set_page_config(page_title="Drift Lab", page_icon="🌀", layout="wide")
home = st.Page("pages/home.py", title="Home", icon="🏠", default=True)
st.navigation([home]).run()
