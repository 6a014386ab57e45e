"""The Inspector's words, without Streamlit: its ten stages of one training step (title, what the
picture draws, a few sentences computed from the step) and what the kernel lens says about one
particle; and the page's own state (:class:`InspectorState`). The numbers come from
:class:`drift_core.probes.StepInspection`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drift_core.config import ExperimentConfig
from drift_core.probes import StepInspection, effective_neighbours, inspect_step
from drift_core.run import Run
from drift_core.train import DivergedError

from .words import Card


def inspection_cards(ins: StepInspection) -> list[Card]:
    """The inspected step's cards: its step, loss, how far the outputs moved relative to V, and K."""
    return [
        Card("Step", f"{ins.step}"),
        Card("Loss", f"{ins.loss:.1e}", "‖V‖²: the drifting loss of this step"),
        Card(
            "Moved ÷ asked",
            f"{ins.achieved_fraction:.3g}",
            "how far the outputs really moved along V after the optimiser step, relative to ‖V‖ (1 = exactly as "
            "far as the drift asked). Adam's step size, not the size of V, sets how far they move: far more "
            "than 1 when V is tiny, as at the start",
        ),
        Card("Lookahead terms", f"{len(ins.terms) - 1}"),
    ]


def lens_text(ins: StepInspection, i: int) -> str:
    """What the kernel lens says about particle ``i``: its weight on positives and negatives, its
    neighbours within τ and its drift."""
    w_pos, w_neg = ins.w_pos[i], ins.w_neg[i]
    p = ins.positives.shape[0]
    return (
        f"Particle **{i}** at ({ins.outputs[i, 0]:.3f}, {ins.outputs[i, 1]:.3f}).\n\n"
        f"- Weight on positives Σ W⁺ = {w_pos.sum():.3g}, effective neighbours {effective_neighbours(w_pos):.1f}\n"
        f"- Weight on negatives Σ W⁻ = {w_neg.sum():.3g}, effective neighbours {effective_neighbours(w_neg):.1f}\n"
        f"- Within distance τ = {ins.tau:g}: {(ins.distance[i, :p] < ins.tau).sum()} positives, "
        f"{(np.delete(ins.distance[i, p:], i) < ins.tau).sum()} other particles\n"
        f"- Drift V = ({ins.v[i, 0]:.2e}, {ins.v[i, 1]:.2e})\n\n"
        "Marker size shows each neighbour's weight. A larger τ widens the lens; a smaller τ makes "
        "each particle see only its nearest neighbours."
    )


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


def inspected_config(config: ExperimentConfig, particles: int) -> tuple[ExperimentConfig, str]:
    """The Inspector's run of the session's ``config``: ``particles`` as its batch, a budget it never
    reaches, and always the network on 2D data (the step it shows); with a note when the session's
    particle mode or dimensions do not apply here ("" otherwise)."""
    note = ""
    if config.train.mode != "network" or config.data.dimension != 2:
        note = (
            "The Inspector takes one step of the network on 2D data: it shows that step (the sidebar's particle "
            "mode and dimensions apply on the Playground and Compare)."
        )
    changes = {"batch_size": particles, "steps": 10**6, "mode": "network", "dimension": 2}
    return config.with_values(changes), note


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

    def advance_stage(self, run: Run) -> None:
        """Play: the next stage, or a new step after the last one."""
        if self.stage + 1 < len(STAGES):
            self.stage += 1
        else:
            self.next_step(run)

    def move_stage(self, delta: int) -> None:
        """The previous (-1) or next (+1) stage, staying within the stages."""
        self.stage = min(max(self.stage + delta, 0), len(STAGES) - 1)

    def pick(self, click: dict) -> None:
        """Put the particle nearest a click (data coordinates ``{"x", "y"}``) under the kernel lens."""
        outputs = self.inspection.outputs
        self.particle = int(np.argmin(((outputs - [click["x"], click["y"]]) ** 2).sum(1)))

    def lens_particle(self) -> int:
        """The particle under the lens, within the inspected batch (a smaller new batch moves it)."""
        self.particle = min(self.particle, self.inspection.outputs.shape[0] - 1)
        return self.particle
