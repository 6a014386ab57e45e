"""Deep links on a fresh server: make sure pages run under app.py's st.navigation.

Streamlit 1.67 treats an app with a ``pages/`` folder as a legacy (v1) multipage app until
``st.navigation`` has run once in the server process (AppTest even resets that flag before every run).
So the first visitor of a fresh server who opens a deep link such as ``/playground?K=2`` would get the
page script alone: no ``app.py``, a legacy sidebar listing files, no page config. Each page calls
:func:`ensure_navigation` right after its imports: in legacy mode it switches the flag off and runs
``app.py`` in place (its ``st.navigation`` picks this page from the URL and runs it), then stops the
legacy run. Nothing is rerun, so button clicks and query parameters of this run are kept.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

APP = Path(__file__).resolve().parents[1] / "app.py"


def ensure_navigation() -> None:
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        code = compile(APP.read_text(encoding="utf-8"), str(APP), "exec")
        exec(code, {"__name__": "__main__", "__file__": str(APP)})  # noqa: S102 - our own entry point
        st.stop()
