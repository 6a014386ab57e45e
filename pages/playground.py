"""Playground: live training on a 2D dataset with particles, drift arrows and live metrics."""

from ui.navigation_fix import ensure_navigation

ensure_navigation()  # first: a deep link on a fresh server runs this page alone (see ui.navigation_fix)

import streamlit as st

from ui import classroom, controls, dimension_view, run_view, safety

PAGE = "playground"

session = controls.start_sidebar()
st.sidebar.toggle(
    "Beside it: the field without the network (restarts)",
    **controls.view_widget("beside_particles"),
    disabled=session.config.train.mode != "network",
    help="the same start points moved directly by the field (z ← z + η·V), on the same batches: what the one-step "
    "generator adds (smoothing, fresh samples) and what it costs",
)
controls.live_controls(session)
safety.checkpoint_controls(session, PAGE)
controls.finish_sidebar(session, "to train on your own data")

run = session.run_for(PAGE, session.config)
run_view.header("Playground", PAGE, run)
run_view.run_note(session, PAGE)
run_view.LiveRunView(session, PAGE, run).show()
st.caption(
    "A small generator (noise → MLP → point) learns a 2D distribution by drifting. Press **Play**, then "
    "change K or τ while it runs. Faint grey: data; blue: generated particles; arrows: the drift "
    "each particle is pushed along (drawn longer than true size)."
)
dimension_view.kernel_flattening(PAGE, run)
run_view.timeline(session, PAGE, run)
with st.expander("Export this run: GIF / MP4, metrics CSV, config JSON", icon=":material/download:"):
    classroom.export_buttons(run)
