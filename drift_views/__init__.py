"""The app without Streamlit: what Drift Lab shows of a run (Plotly figures as plain dicts, the
sentences printed beside them), the state behind the pages (a browser session's
:class:`~drift_views.session.LabSession` and what each control does to it, the display settings, the
Inspector's, Sweep's and Images page's own state, predict then reveal), the frame pacing of the live
views and the server's bound on live sessions (:mod:`drift_views.registry`). The app's ``ui`` package
lays these out with Streamlit widgets and binds the widgets to them; a notebook or a script can use
them directly, and the tests drive them without a browser.

The layers: ``drift_core`` (the engine: no plotting library) ← ``drift_views`` (Plotly dicts and
words, state: no Streamlit) ← ``ui`` and ``pages`` (widgets and layout).
"""
