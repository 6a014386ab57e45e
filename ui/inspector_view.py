"""The Inspector's stages: one training step in slow motion, each stage with its title, what its
picture draws and a few sentences computed from the step (:class:`~drift_core.probes.StepInspection`),
and the page's own state (the inspected step, the stage, the particle under the kernel lens)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from drift_core.particles import ParticleTrainer
from drift_core.probes import StepInspection, effective_neighbours, inspect_step
from drift_core.run import Run
from drift_core.train import DivergedError
from drift_views import figures

from .live_plot import LiveView
from .session import lab


@dataclass(frozen=True)
class Stage:
    """One stage: ``draws`` names what its picture shows (see :func:`drift_views.figures.stage_figure`)."""

    title: str
    draws: frozenset[str]
    explain: Callable[[StepInspection], str]


def _kernel(ins: StepInspection) -> str:
    n = ins.outputs.shape[0]
    neighbours = np.mean([effective_neighbours(w) for w in ins.w_pos])
    hint = (
        ""
        if neighbours >= 1.5
        else f"\n\n**Note:** with τ = {ins.tau:g} each particle sees only about "
        f"{neighbours:.1f} positive(s): the kernel is narrow for {n} points, so V is tiny. Try a larger τ."
    )
    return (
        f"Every particle i is compared with every positive and every other particle through the kernel "
        f"exp(−‖x − y‖/τ), τ = {ins.tau:g}, normalised over rows and columns and cross-weighted (W⁺ | W⁻). "
        "Bright cells are close pairs. The diagonal of W⁻ (a particle with itself) is masked." + hint
    )


def _lookahead(ins: StepInspection) -> str:
    k = len(ins.terms) - 1
    if k == 0:
        return "Baseline (K = 0): no lookahead terms; V = V₀. Raise K in the sidebar to see them."
    return (
        f"Lookahead computes {k} more term(s): z^(k+1) = z^k + α V_k, and each V_k is the drift of the moved "
        f"set z^k (one colour per term, true length). The training move is Σ w_k V_k, weights "
        f"{', '.join(f'{w:g}' for w in ins.weights)}."
    )


def _norms(ins: StepInspection) -> np.ndarray:
    return np.sqrt((ins.v**2).sum(1))


STAGES: tuple[Stage, ...] = (
    Stage(
        "1 · Sample noise ε",
        frozenset({"noise"}),
        lambda ins: (
            f"{ins.outputs.shape[0]} noise vectors ε ~ N(0, I) of dimension {ins.noise.shape[1]} (the picture shows "
            "their first two coordinates). Each one becomes one generated point."
        ),
    ),
    Stage(
        "2 · Generator outputs x = f(ε)",
        frozenset(),
        lambda ins: (
            f"The generator maps each ε to a point x = f(ε): {ins.outputs.shape[0]} blue particles. No data is "
            "involved yet."
        ),
    ),
    Stage(
        "3 · Draw a data batch (positives)",
        frozenset({"data"}),
        lambda ins: (
            f"{ins.positives.shape[0]} real data points (green) are drawn: the *positives* that attract the particles."
        ),
    ),
    Stage("4 · Kernel matrix", frozenset({"data", "kernel"}), _kernel),
    Stage(
        "5 · Attraction V⁺, repulsion V⁻, drift V₀ = V⁺ − V⁻",
        frozenset({"data", "attraction"}),
        lambda ins: (
            "V⁺ (green) pulls each particle towards nearby data; V⁻ (red, drawn as −V⁻) pushes it away from "
            "nearby particles. Their difference V₀ (black) is the drift: it vanishes when the particles match the "
            "data. Arrows are drawn longer than true size."
        ),
    ),
    Stage("6 · Lookahead points z⁰..z^K", frozenset({"data", "lookahead"}), _lookahead),
    Stage(
        "7 · Drifted targets x + V",
        frozenset({"data", "targets"}),
        lambda ins: (
            f"Each particle's target is x + V (orange), a frozen point (stop-gradient). Mean ‖V‖ = "
            f"{_norms(ins).mean():.2e}, largest {_norms(ins).max():.2e}."
        ),
    ),
    Stage(
        "8 · Loss ‖x − stopgrad(x + V)‖²",
        frozenset({"data", "targets"}),
        lambda ins: (
            f"The loss is the mean squared distance to the frozen targets: mean(V²) = **{ins.loss:.3e}**. Its "
            "gradient pulls each output towards its target; the drift itself gets no gradient."
        ),
    ),
    Stage(
        "9 · Optimiser step",
        frozenset({"data", "moved"}),
        lambda ins: (
            f"Adam (lr {ins.record.lr:g}) updates the generator's weights once. The network cannot move every "
            "point independently: all points move together through shared weights."
        ),
    ),
    Stage(
        "10 · Where the outputs actually moved",
        frozenset({"data", "moved"}),
        lambda ins: (
            f"Orange: the target move V. Black: where f(ε) actually moved after the step (purple dots). Tracking "
            f"error RMS = {ins.tracking_error:.2e}; achieved/target = {ins.achieved_fraction:.2f} (1 would mean "
            "the outputs moved exactly as far as V asked, on average; Adam's step size sets this, not V)."
        ),
    ),
)


@dataclass
class InspectorState:
    """The Inspector's own state: the step inspected (of which run), the stage shown, the particle
    under the kernel lens, and why the last step could not be taken."""

    inspection: StepInspection | None = None
    run: Run | None = None
    stage: int = 0
    particle: int = 0
    error: str = ""

    def next_step(self, run: Run) -> None:
        """Take one inspected training step of ``run`` (a real step of its trainer) and start at stage 1."""
        try:
            with run.lock:  # one step at a time per run, whatever script runs overlap
                self.inspection = inspect_step(run.trainer)
            self.error = ""
        except DivergedError as err:
            self.error = str(err)
            run.playing = False
        self.run, self.stage = run, 0

    @staticmethod
    def from_playground(config) -> None:
        """on_click: the Inspector continues from a copy of the Playground's run as it is now (its
        weights, optimizer and data stream), with this page's batch size."""
        session = lab()
        source = session.runs.get("playground")
        if source is None or isinstance(source.trainer, ParticleTrainer):
            return
        with source.lock:
            trainer = source.trainer.spawn(source.config)
            trainer.load_state_dict(copy.deepcopy(source.trainer.state_dict()))
        trainer.update(trainer.config.with_values({"batch_size": config.train.batch_size, "steps": config.train.steps}))
        session.runs["inspector"] = Run.around(trainer)
        session.run_points["inspector"] = session.run_points.get("playground", 0)
        session.notices["inspector"] = (
            f":material/content_copy: Inspecting a copy of the Playground's run at step "
            f"{trainer.step_count}; the Playground's own run is untouched."
        )

    def advance_stage(self, run: Run) -> None:
        """Play: the next stage, or a new step after the last one."""
        if self.stage + 1 < len(STAGES):
            self.stage += 1
        else:
            self.next_step(run)


# ---- drawing -------------------------------------------------------------------------------------------
def cards(ins: StepInspection) -> None:
    top = st.columns(2)
    top[0].metric("Step", f"{ins.step}")
    top[1].metric("Loss", f"{ins.loss:.1e}", help="‖V‖²: the drifting loss of this step")
    bottom = st.columns(2)
    bottom[0].metric(
        "Moved ÷ asked",
        f"{ins.achieved_fraction:.3g}",
        help="how far the outputs really moved along V after the optimiser step, relative to ‖V‖ (1 = exactly "
        "as far as the drift asked). Adam's step size, not the size of V, sets how far they move: far "
        "more than 1 when V is tiny, as at the start",
    )
    bottom[1].metric("Lookahead terms", f"{len(ins.terms) - 1}")


def _move_stage(delta: int) -> None:
    state = lab().page("inspector", InspectorState)
    state.stage = min(max(state.stage + delta, 0), len(STAGES) - 1)


def _pick_stage() -> None:
    lab().page("inspector", InspectorState).stage = int(st.session_state["stage"])


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
    st.session_state["stage"] = state.stage
    nav[1].select_slider(
        "Stage",
        list(range(len(STAGES))),
        key="stage",
        on_change=_pick_stage,
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
            state.particle = int(np.argmin(((ins.outputs - [click["x"], click["y"]]) ** 2).sum(1)))
    with right:
        stage_picker(state)
        st.markdown(f"#### {stage.title}")
        st.markdown(stage.explain(ins))
        cards(ins)
        if "kernel" in stage.draws:
            LiveView("view_kernel").draw(figures.kernel_matrix_figure(ins.w_pos, ins.w_neg))


def _pick_lens() -> None:
    lab().page("inspector", InspectorState).particle = int(st.session_state["lens_particle"])


def kernel_lens(state: InspectorState, run: Run) -> None:
    ins = state.inspection
    st.markdown("### Kernel lens")
    n = ins.outputs.shape[0]
    state.particle = min(state.particle, n - 1)
    i = state.particle
    left, right = st.columns([3, 2])
    with right:
        st.session_state["lens_particle"] = i
        st.number_input(
            "Particle",
            min_value=0,
            max_value=n - 1,
            step=1,
            key="lens_particle",
            on_change=_pick_lens,
            help="or click a particle in the picture above",
        )
        w_pos, w_neg = ins.w_pos[i], ins.w_neg[i]
        p = ins.positives.shape[0]
        st.markdown(
            f"Particle **{i}** at ({ins.outputs[i, 0]:.3f}, {ins.outputs[i, 1]:.3f}).\n\n"
            f"- Weight on positives Σ W⁺ = {w_pos.sum():.3g}, effective neighbours {effective_neighbours(w_pos):.1f}\n"
            f"- Weight on negatives Σ W⁻ = {w_neg.sum():.3g}, effective neighbours {effective_neighbours(w_neg):.1f}\n"
            f"- Within distance τ = {ins.tau:g}: {(ins.distance[i, :p] < ins.tau).sum()} positives, "
            f"{(np.delete(ins.distance[i, p:], i) < ins.tau).sum()} other particles\n"
            f"- Drift V = ({ins.v[i, 0]:.2e}, {ins.v[i, 1]:.2e})\n\n"
            "Marker size shows each neighbour's weight. A larger τ widens the lens; a smaller τ makes "
            "each particle see only its nearest neighbours."
        )
    with left:
        LiveView("view_lens").draw(figures.lens_figure(ins, i, run.bounds))
