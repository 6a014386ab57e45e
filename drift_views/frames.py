"""What one frame of the Playground's or Compare's live view shows of a :class:`~drift_core.run.Run`:
the snapshots to draw (live, or a kept step chosen on the timeline), one particle figure per arm, the
warning above them and what the transport buttons offer. ``ui.run_view`` lays these out and sends
them to the browser; nothing here draws or trains.
"""

from __future__ import annotations

from dataclasses import dataclass

from drift_core.particles import ParticleTrainer
from drift_core.records import Snapshot
from drift_core.run import TAPE_EVERY, Run

from . import figures
from .display import ViewSettings
from .words import arm_title, kernel_share_warning, noise_caption


@dataclass
class Frame:
    """What one drawn frame shows: each arm's snapshot, and the replayed step (None when live)."""

    snaps: dict[str, Snapshot]
    replay_step: int | None

    @classmethod
    def of(cls, run: Run, replay_step: int | None) -> Frame:
        """The run at the kept step ``replay_step`` while paused (when every arm kept it), else live."""
        if replay_step is not None and not run.playing:
            snaps = {name: history.snapshot_at(replay_step) for name, history in run.histories.items()}
            if all(snap is not None for snap in snaps.values()):
                return cls(snaps, replay_step)
        return cls(run.frames(), None)

    def step(self, run: Run) -> int:
        """The step this frame stands for: the replayed one, or the run's."""
        return run.step if self.replay_step is None else self.replay_step


def arm_figures(run: Run, frame: Frame, view: ViewSettings, *, compare: bool, height: int) -> dict[str, dict]:
    """One particle figure per arm of ``run`` as ``frame`` shows it, with the page's layers: on Compare
    the arrow layers and, on the lookahead panel, the difference lines to the baseline's particles; on
    the Playground also the field on a grid and the density."""
    style = figures.Style.of(view)
    out = {}
    for name, snap in frame.snaps.items():
        replayed = None if frame.replay_step is None else snap.step
        title = arm_title(run, name, frame.step(run), compare=compare, replay_step=replayed)
        if compare:
            layers = set(view.compare_layers)
            baseline = frame.snaps.get("baseline")
            other = baseline.generated if (name == "lookahead" and view.difference and baseline) else None
            extra = {"other": other, "other_name": "baseline", "uirevision": "compare"}
        else:
            layers = set(view.layers)
            extra = figures.field_layers(snap, run.bounds, run.config.drift, layers)
        out[name] = figures.particle_figure(
            snap,
            run.bounds,
            layers,
            arrow_scale=float(view.arrow_scale),
            title=title,
            height=height,
            style=style,
            **extra,
        )
    return out


def noise_applies(run: Run) -> bool:
    """Estimator noise is drawn for a single-arm network run on 2D data (it redraws the batch for the
    network's outputs on the display noise)."""
    return len(run.trainers) == 1 and not isinstance(run.trainer, ParticleTrainer) and run.config.data.dimension == 2


def noise_note(run: Run, frame: Frame, view: ViewSettings, figure: dict) -> str | None:
    """With the estimator-noise layer switched on, on a live frame of a run it applies to: add the layer
    to ``figure`` (the first arm's, :func:`drift_views.figures.noise_layer`) and return its sentence, or
    why it cannot be computed. None where it is not drawn."""
    if not (view.estimator_noise and frame.replay_step is None and noise_applies(run)):
        return None
    noise = figures.noise_layer(run.trainer, figure, float(view.arrow_scale), seed=run.step)
    return noise if isinstance(noise, str) else noise_caption(noise)


def branch_figures(run: Run, view: ViewSettings, height: int) -> tuple[list[tuple[dict, str | None]], dict]:
    """The Playground's branches drawn small: each one's particle figure with its message (why it
    paused, or None), and the energy curves of the original and every branch."""
    style, drawn = figures.Style.of(view), []
    for index, (name, branch) in enumerate(run.branches):
        snap = branch.frame()
        figure = figures.particle_figure(
            snap,
            branch.bounds,
            {"V"},
            arrow_scale=float(view.arrow_scale),
            title=f"{name} · step {snap.step}",
            height=height,
            uirevision=f"branch{index}",
            style=style,
        )
        drawn.append((figure, branch.message or None))
    curves = figures.energy_figure(
        {"original": run.history} | {name: branch.history for name, branch in run.branches},
        "energy distance vs step: original and branches",
        style=style,
    )
    return drawn, curves


@dataclass(frozen=True)
class RunWarning:
    """A sentence shown above the picture, and the Material icon that marks its kind."""

    text: str
    icon: str


def run_warning(run: Run) -> RunWarning | None:
    """Why the run paused (divergence, the step budget), why nothing moves (the data's kernel weight
    vanished), or the out-of-memory fallback it took; None when all is well."""
    if run.message:
        return RunWarning(run.message, "pause_circle")
    if why_still := kernel_share_warning(run.kernel_share, run.base_config):
        return RunWarning(why_still, "visibility_off")
    fallback = [notice for trainer in run.trainers.values() for notice in getattr(trainer, "fallback_notices", ())]
    if fallback:
        trainer = run.trainer
        where = "the CPU" if trainer.device.type == "cpu" else str(trainer.device)
        return RunWarning(
            f"Out of memory: {fallback[-1]}. This run now uses batch size {trainer.config.train.batch_size} on {where}.",
            "memory",
        )
    return None


@dataclass(frozen=True)
class Transport:
    """What the transport buttons offer for a run: Play is disabled once the step budget is spent
    (``budget_spent``); while the run is diverged, Step back returns to ``step_back_to``, the newest
    kept state before now (None: none is kept)."""

    playing: bool
    budget_steps: int | None
    budget_spent: bool
    diverged: bool
    step_back_to: int | None

    @classmethod
    def of(cls, run) -> Transport:
        budget = getattr(getattr(run, "base_config", None), "train", None)
        steps = None if budget is None else budget.steps
        diverged = bool(getattr(run, "diverged", False))
        earlier = [s for s in run.kept_steps() if s < run.step] if diverged else []
        return cls(
            playing=run.playing,
            budget_steps=steps,
            budget_spent=steps is not None and not run.playing and run.step >= steps,
            diverged=diverged,
            step_back_to=earlier[-1] if earlier else None,
        )

    @property
    def play_help(self) -> str:
        if self.budget_spent:
            return f"the step budget ({self.budget_steps} steps) is used up: raise 'Step budget' or press Reset"
        return "play or pause (Space)"

    @property
    def step_back_label(self) -> str:
        return "Step back" if self.step_back_to is None else f"Step back to step {self.step_back_to}"

    STEP_BACK_HELP = f"return to the newest kept state before this one (kept every {TAPE_EVERY} steps)"


def fork_refusal(run: Run, step: int) -> str:
    """Why the run cannot be forked at ``step`` and where it can, in words ("" when it can). A fork
    needs the whole training state of its step, and the run keeps only its newest states
    (:data:`~drift_core.run.TAPE_STATES`, within a memory bound), so the timeline's oldest frames can
    be watched but not forked."""
    if run.can_fork(step):
        return ""
    kept = run.kept_steps()
    if not kept:
        return f"Step {step}'s training state is not kept: train a few steps, then fork."
    if step > kept[-1]:
        return f"Step {step}'s training state is not kept: pick step {kept[-1]} or earlier on the timeline."
    return (
        f"Step {step}'s training state is no longer kept (the run keeps only its newest states): pick step "
        f"{kept[0]} or later on the timeline to fork."
    )
