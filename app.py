"""Drift Lab: the Streamlit entry point (`streamlit run app.py`). Pages are listed explicitly."""
import streamlit as st

from ui.classroom import page_style
from ui.controls import open_session
from ui.safety import configure_torch_threads, guard_session, show_session_notice

configure_torch_threads()
st.set_page_config(page_title="Drift Lab", page_icon="🌀", layout="wide")
guard_session()  # DRIFT_MAX_SESSIONS: admit, evict an idle session, or refuse with the reason
show_session_notice()
open_session()  # a shared link's settings, whichever page it opens
page_style()
pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/playground.py", title="Playground", icon=":material/tune:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/inspector.py", title="Inspector", icon=":material/biotech:"),
    st.Page("pages/sweep.py", title="Sweep", icon=":material/grid_on:"),
    st.Page("pages/cifar10.py", title="Images (CIFAR10)", icon=":material/image:"),
]
st.navigation(pages).run()
