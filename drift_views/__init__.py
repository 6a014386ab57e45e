"""What Drift Lab shows of a run, without Streamlit: Plotly figures as plain dicts, the sentences
printed beside them, and the state of the classroom tools (the Inspector's stages, predict then
reveal). The app's ``ui`` package lays these out with Streamlit widgets; a notebook or a script can
use them directly.

The layers: ``drift_core`` (the engine: no plotting library) ← ``drift_views`` (Plotly dicts and
words: no Streamlit) ← ``ui`` and ``pages`` (widgets and layout).
"""
