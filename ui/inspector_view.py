"""The Inspector's widgets and layout: one training step in slow motion, stage by stage, and the kernel
lens. The stages, their words and the page's own state (the inspected step, the stage, the particle
under the lens) are :mod:`drift_views.inspector`'s."""

from __future__ import annotations

import streamlit as st

from drift_core.probes import StepInspection
from drift_core.run import Run
from drift_views import figures
from drift_views.inspector import STAGES, InspectorState, inspection_cards, lens_text

from .live_plot import LiveView
from .session import bound, lab


# ---- drawing -------------------------------------------------------------------------------------------
def cards(ins: StepInspection) -> None:
    for cell, card in zip([*st.columns(2), *st.columns(2)], inspection_cards(ins)):
        cell.metric(card.label, card.value, help=card.help)


def _move_stage(delta: int) -> None:
    lab().page("inspector", InspectorState).move_stage(delta)


def stage_picker(state: InspectorState) -> None:
    nav = st.columns([1, 6, 1], vertical_alignment="center")
    nav[0].button(
        "",
        icon=":material/chevron_left:",
        key="previous_stage",
        on_click=_move_stage,
        args=(-1,),
        help="previous stage",
    )
    nav[1].select_slider(
        "Stage",
        list(range(len(STAGES))),
        **bound(
            "stage", state.stage, lambda stage: setattr(lab().page("inspector", InspectorState), "stage", int(stage))
        ),
        format_func=lambda i: STAGES[i].title,
        label_visibility="collapsed",
    )
    nav[2].button(
        "", icon=":material/chevron_right:", key="next_stage", on_click=_move_stage, args=(1,), help="next stage"
    )


def stage_view(state: InspectorState, run: Run, style: figures.Style) -> None:
    """The picture first (a click on it picks the particle for the kernel lens); beside it the stage
    picker, the step's numbers and what the stage shows."""
    ins, stage = state.inspection, STAGES[state.stage]
    left, right = st.columns([3, 2])
    with left:
        click = LiveView("view_stage").draw(
            figures.stage_figure(ins, stage.draws, run.bounds, style=style, height=520),
            config={"displayModeBar": False},  # a click picks a particle
            clickable="noise" not in stage.draws,
        )
        if click:
            state.pick(click)
    with right:
        stage_picker(state)
        st.markdown(f"#### {stage.title}")
        st.markdown(stage.explain(ins))
        cards(ins)
        if "kernel" in stage.draws:
            LiveView("view_kernel").draw(figures.kernel_matrix_figure(ins.w_pos, ins.w_neg))


def kernel_lens(state: InspectorState, run: Run) -> None:
    ins = state.inspection
    st.markdown("### Kernel lens")
    i = state.lens_particle()
    left, right = st.columns([3, 2])
    with right:
        st.number_input(
            "Particle",
            min_value=0,
            max_value=ins.outputs.shape[0] - 1,
            step=1,
            **bound("lens_particle", i, lambda i: setattr(lab().page("inspector", InspectorState), "particle", int(i))),
            help="or click a particle in the picture above",
        )
        st.markdown(lens_text(ins, i))
    with left:
        LiveView("view_lens").draw(figures.lens_figure(ins, i, run.bounds))
