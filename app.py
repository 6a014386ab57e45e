"""Drift Lab: the Streamlit entry point (`streamlit run app.py`). Pages are listed explicitly."""

import streamlit as st

st.set_page_config(page_title="Drift Lab", page_icon="🌀", layout="wide")
# The first visit after the server starts imports torch and the engine, which takes seconds: say so
# instead of showing a blank page (later runs find them imported).
with st.spinner("Starting Drift Lab: loading the engine…"):
    from drift_core.process import configure_torch_threads, limit_malloc_arenas  # noqa: E402
    from ui.classroom import page_style  # noqa: E402
    from ui.controls import open_session  # noqa: E402
    from ui.safety import guard_session, show_session_notice, start_memory_janitor  # noqa: E402

configure_torch_threads()
limit_malloc_arenas()
start_memory_janitor()  # closed tabs' runs are freed and handed back even when no script runs
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
    st.Page("pages/cifar10.py", title="Images", icon=":material/image:"),
]
navigation = st.navigation(pages, position="hidden")
with st.sidebar:  # our own links: Streamlit's would list the pages/ folder's raw file names on a first visit
    for page in pages:
        st.page_link(page)
    st.divider()
navigation.run()
