"""Inspector: one training step in slow motion, and a kernel lens on any particle."""

from ui.navigation_fix import ensure_navigation

ensure_navigation()  # first: a deep link on a fresh server runs this page alone (see ui.navigation_fix)

import streamlit as st

from drift_views import figures
from drift_views.inspector import InspectorState, inspected_config
from ui import controls, inspector_view, run_view
from ui.live import live_fragment
from ui.session import on_session

PAGE = "inspector"
STAGE_S = 0.6  # seconds per stage while playing

session = controls.start_sidebar()
controls.live_controls(session, batch=False, speed=False)
st.sidebar.select_slider(
    "Particles (batch size for this page)", [16, 32, 48, 64, 96, 128], **controls.view_widget("inspect_n")
)
controls.finish_sidebar(session, "to inspect a step on your own data")

config, note = inspected_config(session.config, session.view.inspect_n)
if note:
    st.info(note, icon=":material/info:")
run = session.run_for(PAGE, config)
state = session.page(PAGE, InspectorState)


run_view.header("Inspector", PAGE, run, step_method="inspect_next_step", step_label="Next step")
if state.run is not run:
    state.next_step(run)
run_view.run_note(session, PAGE)
playground = session.inspectable_playground(run.config)
if playground is not None:
    st.button(
        f"Inspect the Playground's run (step {playground.step})",
        key="inspect_playground",
        icon=":material/content_copy:",
        on_click=on_session,
        args=("inspect_playground", run.config),
        help="continue here from a copy of the Playground's trained network instead of a fresh one",
    )


def body() -> None:
    if run.playing:
        state.advance_stage(run)
        if not run.playing:
            st.rerun()
    if state.error:
        st.warning(f"{state.error}. Press Reset (and lower the learning rate).", icon=":material/pause_circle:")
    inspector_view.stage_view(state, run, figures.Style.of(session.view))
    st.caption(
        "One training step in slow motion, on a small batch so every particle can be seen. Press **Play** to walk "
        "through the stages (a new step starts after the last), or use the stage slider. Click a particle in the "
        "picture to open its kernel lens below."
    )
    inspector_view.kernel_lens(state, run)


live_fragment(body, run.playing, STAGE_S)
