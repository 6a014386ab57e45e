"""Compare: baseline and lookahead (and optionally baseline with 2× learning rate) in lock-step."""

from ui.navigation_fix import ensure_navigation

ensure_navigation()  # first: a deep link on a fresh server runs this page alone (see ui.navigation_fix)

import streamlit as st

from ui import classroom, controls, run_view

PAGE = "compare"

session = controls.start_sidebar()
st.sidebar.toggle(
    "Add a baseline with 2× learning rate (fairness control; restarts)", **controls.view_widget("fairness")
)
controls.live_controls(session, lookahead_arm=True)
controls.finish_sidebar(session, "to compare on your own data")

run = session.run_for(PAGE, session.config, fairness=session.view.fairness)
run_view.header("Compare", PAGE, run)
run_view.run_note(session, PAGE)
run_view.LiveRunView(session, PAGE, run).show()
st.caption(
    "Baseline and lookahead drifting start from the **same weights** and train on the **same noise and data "
    "batches**, so any difference comes from the drift alone. Lookahead does more work per step: the "
    "*training time* curves and the optional 2× learning-rate baseline keep the comparison fair."
)
run_view.timeline(session, PAGE, run)
with st.expander(
    "Export this comparison: side-by-side GIF / MP4, metrics CSV, config JSON", icon=":material/download:"
):
    classroom.export_buttons(run)
