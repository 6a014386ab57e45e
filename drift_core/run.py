"""One run of drifting training, for every front end (the app's pages, the CLI, the sweep).

A :class:`Run` is one trainer, or several *arms* trained in lock-step (baseline, lookahead, the 2× lr
control: same initial weights, same noise and data batches), with what every front end needs around
them. An arm is a 2D network :class:`~drift_core.train.Trainer`, a 2D particle arm
(:class:`~drift_core.particles.ParticleTrainer`: the field without the network, ``mode="particles"``)
or an image trainer (:class:`drift_core.images.train.ImageTrainer`, the images page's pair, built by
:func:`drift_core.images.pair.image_pair`): all have what :class:`Arm` lists, and the run treats them
alike (network and particle arms can share one lock-step run: :meth:`Run.network_and_particles`):

* ``advance(n)`` trains up to n steps and returns what happened (:class:`Advance`): the step records,
  and why it paused (divergence, the step budget). One advance at a time: ``lock`` is held while the
  trainers are read or changed, so overlapping callers (two Streamlit script runs of one session)
  never step one model at once.
* ``frame()`` / ``frames()`` snapshot the arms for drawing (kept in each arm's history for replay)
  and evaluate on a cadence; ``evaluate()`` evaluates now.
* ``step_back()`` and ``fork(step, **changes)`` go back to a state kept on the run's bounded tape.
* for 2D arms, one :class:`Evaluator` convention for every front end: the same config and seed give
  the same metrics in the app, on the CLI and in a sweep; and fixed view bounds. Image arms have
  neither (their FID/KID is measured on request, :mod:`drift_core.images.pair`).

Nothing here draws or prints.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from .bounds import square_bounds
from .config import LIVE_FIELDS, ConfigError, ExperimentConfig
from .data.toy2d import MIXTURE_SIGMA, mixture_modes
from .history import History
from .metrics import ReferenceSample, mmd2, mode_coverage, wasserstein2
from .particles import ParticleTrainer, build_arm
from .probes import DataKernelShare, data_kernel_share
from .replay import StateTape, fork_at
from .runtime import make_generator, stream
from .train import DISPLAY_SAMPLES, EVAL_SAMPLES, Lockstep, ToyArm, evaluation_noise

__all__ = [
    "Run",
    "Arm",
    "Advance",
    "Evaluator",
    "EVAL_SAMPLES",
    "DISPLAY_N",
    "DOUBLED_LR_ARM",
    "DOUBLED_STEP_ARM",
    "compare_arms",
    "network_and_particle_arms",
    "reset_changes",
    "view_bounds",
]

DISPLAY_N = DISPLAY_SAMPLES
"""Particles drawn per view (the arms' fixed display sample holds 512)."""
SLICED_ANGLES = 128
"""Projection angles of the sliced W2 in every front end."""
METRIC_EVERY_S = 0.5
"""While playing, evaluate at most this often (an evaluation costs more than a training step)."""
TAPE_STATES = 60
"""Trainer states kept per arm for forking (at most; see TAPE_BYTES): one per kept snapshot."""
TAPE_BYTES = 16 << 20
"""Bytes of trainer state kept per arm, whatever the model size (the newest state is always kept):
without a bound, live app sessions grew the server's memory without limit (benchmarks/RESULTS.md,
"Load test")."""
TAPE_EVERY = 10
"""Besides each kept snapshot, the tape keeps the state every this many steps (also headless, for
divergence)."""
MAX_BRANCHES = 4
"""Forks trained beside a single run (the oldest is dropped)."""
SNAPSHOTS_KEPT = 200
"""Snapshots kept per arm for replay (2D: a few [512, 2] arrays each)."""
IMAGE_SNAPSHOTS_KEPT = 20
"""Snapshots kept per image arm (64 images of 32 x 32 each)."""
DOUBLED_LR_ARM = "baseline 2×lr"
"""The name of the fairness control arm: the baseline with twice the learning rate."""
DOUBLED_STEP_ARM = "baseline 2×step"
"""The name of a particle comparison's fairness control arm: the baseline with twice the particle step."""
RUNAWAY = 100.0
"""An energy distance this many times the first evaluation's pauses the run (see ``Run._check_runaway``)."""


class Arm(Protocol):
    """What a :class:`Run` needs of a trainer (2D :class:`~drift_core.train.Trainer` and
    :class:`drift_core.images.train.ImageTrainer` both have it)."""

    LIVE_FIELDS: frozenset[str]  # config fields update() applies without a new trainer
    config: Any  # its experiment config (a SectionedConfig with .drift and .train)
    step_count: int
    wall_s: float
    diverged: bool

    def step(self, batch=None): ...  # one step -> a record with .step, .diverged, .message, .as_row()
    def draw_batch(self, generator=None): ...  # a fresh batch from generator (lock-step: the shared stream)
    def fit_batch(self, batch): ...  # its rows of a shared lock-step batch
    def diverge(self, message: str, start: float | None = None): ...  # mark diverged, return its record
    def recover(self) -> None: ...
    def update(self, config) -> list[str]: ...
    def snapshot(self, n: int): ...  # a frame to draw, with .step
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def spawn(self, config): ...  # a fresh trainer like this one (data, device) for config


@dataclass(frozen=True)
class Evaluator:
    """The one evaluation convention: the arm's outputs on a fixed evaluation noise
    (``stream(seed, "evaluation")``; a particle arm's particles, which started there) against a fixed
    reference sample of the 2D data (``stream(seed, "reference")``), ``EVAL_SAMPLES`` of each; energy
    distance, sliced W₂ (``SLICED_ANGLES``) and, on a mixture, mode coverage; MMD² and exact W₂ when
    asked (they cost several times the rest, too much for the app's live cadence).

    Data embedded in D > 2 dimensions is evaluated on the 2D projection (the outputs projected onto
    the data's plane, against the same 2D reference sample a D = 2 run has), so the numbers compare
    across D; ``off_plane_rms`` adds the RMS of the outputs' D - 2 extra coordinates (the data's is
    ``embedding_noise``)."""

    noise: Tensor  # [n, noise_dim]
    reference: Tensor  # [n, 2]
    modes: Tensor | None
    sigma: float | None
    measured: ReferenceSample | None = None  # the reference's own terms of the metrics, computed once

    def __post_init__(self) -> None:
        if self.measured is None:  # frozen: set once, here
            object.__setattr__(self, "measured", ReferenceSample.of(self.reference, SLICED_ANGLES))

    @classmethod
    def for_trainer(cls, trainer: ToyArm, n: int | None = None) -> Evaluator:
        """The evaluator of an arm's run with n samples (default ``EVAL_SAMPLES``, or a particle arm's
        particle count: its particles are the samples)."""
        if n is None:
            n = trainer.particles.shape[0] if isinstance(trainer, ParticleTrainer) else EVAL_SAMPLES
        seed, name = trainer.config.train.seed, trainer.config.data.dataset
        reference = trainer.sampler(n, generator=stream(seed, "reference"))
        return cls(evaluation_noise(trainer.config, n), reference, mixture_modes(name), MIXTURE_SIGMA.get(name))

    def generated(self, trainer: ToyArm) -> Tensor:
        """The arm's outputs on the evaluation noise, projected onto the data's plane: [n, 2] (CPU)."""
        return trainer.project(trainer.outputs(self.noise))

    def __call__(self, trainer: ToyArm, *, mmd: bool = False, exact_w2: bool = False) -> dict[str, float]:
        """The metrics of the arm's current outputs; {} when they are not finite."""
        full = trainer.outputs(self.noise)
        if not torch.isfinite(full).all():
            return {}
        g = trainer.project(full)
        out = {"energy": self.measured.energy_distance(g), "sliced_w2": self.measured.sliced_wasserstein(g)}
        if mmd:
            out["mmd2"] = mmd2(g, self.reference)
        if exact_w2:
            out["w2"] = wasserstein2(g, self.reference)
        if self.modes is not None and self.sigma is not None:
            coverage = mode_coverage(g, self.modes, self.sigma)
            out["modes_covered"] = float(coverage.covered)
            out["high_quality"] = coverage.high_quality
        if trainer.embedding is not None:
            out["off_plane_rms"] = float(trainer.embedding.off_plane(full).double().square().mean().sqrt())
        return out


def reset_changes(old, new, live: frozenset[str] = LIVE_FIELDS) -> list[str]:
    """Names of the fields that differ between two configs and need a new run (all but ``live``;
    default: a 2D trainer's live fields)."""
    a, b = old.to_flat(), new.to_flat()
    return [k for k in b if k not in live and a[k] != b[k]]


def view_bounds(*samples: np.ndarray, margin: float = 0.15, min_span: float = 0.5) -> tuple[float, float, float, float]:
    """A square box (xmin, xmax, ymin, ymax) holding the finite points of ``samples`` (a few stray ones
    aside) with a margin; fixed for a run so the axes never jump (:func:`~drift_core.bounds.square_bounds`)."""
    return square_bounds(samples, margin=margin, quantiles=(0.005, 0.995), min_span=min_span)


def compare_arms(config: ExperimentConfig, fairness: bool) -> dict[str, ExperimentConfig]:
    """The arms of a comparison: baseline (K = 0), lookahead (the config's K, at least 1) and optionally
    the fairness control (lookahead also takes a bigger step): the baseline with doubled learning rate
    (:data:`DOUBLED_LR_ARM`), or in particle mode with doubled particle step (:data:`DOUBLED_STEP_ARM`),
    which answers "is lookahead only a larger step?" without a network in between."""
    k = max(1, config.drift.K)
    arms = {
        "baseline": config.with_values({"method": "baseline"}),
        "lookahead": config.with_values({"method": "lookahead", "K": k}),
    }
    if fairness and config.train.mode == "particles":
        arms[DOUBLED_STEP_ARM] = config.with_values(
            {"method": "baseline", "particle_step": 2 * config.train.particle_step}
        )
    elif fairness:
        arms[DOUBLED_LR_ARM] = config.with_values({"method": "baseline", "lr": min(1.0, 2 * config.train.lr)})
    return arms


def network_and_particle_arms(config: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """The arms of :meth:`Run.network_and_particles`: "network" and "particles", both with the config's
    drift, data and seed (the particles start at the network's initial outputs)."""
    return {"network": config.with_values({"mode": "network"}), "particles": config.with_values({"mode": "particles"})}


def single_arm(config) -> dict[str, Any]:
    """The one arm, "run", of a single run."""
    return {"run": config}


@dataclass
class Advance:
    """What one call of :meth:`Run.advance` did: the step records (all arms), why it paused ("" if it
    did not), the training seconds, and ``busy`` when it trained nothing because another caller was
    training this run at that moment (only with ``wait=False``)."""

    records: list = field(default_factory=list)  # StepRecord (2D arms) or ImageStepRecord, arm after arm
    paused_reason: str = ""
    train_s: float = 0.0
    busy: bool = False


class Run:
    """Arms (one trainer, or several in lock-step) with one history and one state tape per arm, the
    play state and, for 2D arms, the evaluator and fixed drawing bounds. Build one with
    :meth:`single`, :meth:`around`, :meth:`compare`, :meth:`lockstep_arms` or :meth:`of`.

    ``arms`` maps a base config to the arms' configs (used by :meth:`apply` and :meth:`fork`; default:
    :func:`compare_arms` for lock-step arms, the one arm "run" otherwise)."""

    def __init__(
        self,
        trainers: dict[str, Arm],
        base_config,
        *,
        fairness: bool = False,
        lockstep: Lockstep | None = None,
        evaluator: Evaluator | None = None,
        bounds: tuple[float, float, float, float] | None = None,
        arms: Callable[[Any], dict[str, Any]] | None = None,
    ):
        self.trainers = trainers
        self.lockstep = lockstep
        self.base_config = base_config
        self.fairness = fairness
        if arms is None:
            arms = partial(compare_arms, fairness=fairness) if lockstep is not None else single_arm
        self.arms = arms
        first = next(iter(trainers.values()))
        self.planar = isinstance(first, ToyArm)  # 2D arms: evaluator, view bounds, kernel share
        kept = SNAPSHOTS_KEPT if self.planar else IMAGE_SNAPSHOTS_KEPT
        self.histories = {name: History(max_snapshots=kept) for name in trainers}
        self.evaluator = evaluator or (Evaluator.for_trainer(first) if self.planar else None)
        if bounds is None and self.planar:
            snap = first.snapshot(DISPLAY_N)
            bounds = view_bounds(snap.positives, snap.generated)
        self.bounds = bounds
        self.playing = False
        self.message = ""
        self.runaway_flagged: set[str] = set()
        self.frames_drawn = 0
        self.kernel_share: DataKernelShare | None = None
        self.last_metric_time = 0.0
        self.lock = threading.RLock()
        # the state tape: every arm's whole state (weights, optimizer, data stream) at kept steps, and the
        # shared batch stream of a lock-step run, so that any kept step can be forked or stepped back to
        self.tapes = {name: StateTape(TAPE_STATES, TAPE_BYTES) for name in trainers}
        self.batch_states: dict[int, torch.Tensor] = {}
        self.branches: list[tuple[str, Run]] = []

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def single(cls, config: ExperimentConfig, points: Tensor | None = None, *, device: str | None = None) -> Run:
        """One arm (the Playground, the Inspector, ``drift-lab train``): the network, or the particles when
        ``config.train.mode == "particles"``; its first frame is kept."""
        return cls.of({"run": build_arm(config, points=points, device=device)}, config)

    @classmethod
    def network_and_particles(
        cls, config: ExperimentConfig, points: Tensor | None = None, *, device: str | None = None
    ) -> Run:
        """The network and the field without it, in lock-step (:func:`network_and_particle_arms`: arms
        "network" and "particles", the same start sample and data batches); live changes (the drift,
        batch size, lr, particle step) apply to both."""
        return cls.lockstep_arms(
            network_and_particle_arms(config), config, points=points, device=device, arms_of=network_and_particle_arms
        )

    @classmethod
    def around(cls, trainer: Arm) -> Run:
        """A single run around an existing trainer (a loaded checkpoint, ``drift-lab train-images``)."""
        return cls.of({"run": trainer}, trainer.config)

    @classmethod
    def compare(
        cls,
        config: ExperimentConfig,
        fairness: bool = False,
        points: Tensor | None = None,
        *,
        device: str | None = None,
    ) -> Run:
        """Lock-step arms from :func:`compare_arms` (the Compare page)."""
        return cls.lockstep_arms(
            compare_arms(config, fairness), config, fairness=fairness, points=points, device=device
        )

    @classmethod
    def lockstep_arms(
        cls,
        arms: dict[str, ExperimentConfig],
        base_config: ExperimentConfig,
        *,
        fairness: bool = False,
        points: Tensor | None = None,
        device: str | None = None,
        arms_of: Callable[[Any], dict[str, Any]] | None = None,
    ) -> Run:
        """Any named 2D arms in lock-step (``drift-lab compare`` with several K), network or particles by
        each config's mode; they must share the dataset, network and seed. ``arms_of`` maps a base config
        to the arms' configs for :meth:`apply` and :meth:`fork` (default :func:`compare_arms`)."""
        lockstep = Lockstep(arms, points=points, device=device, build=build_arm)
        return cls.of(lockstep.trainers, base_config, fairness=fairness, lockstep=lockstep, arms=arms_of)

    @classmethod
    def of(
        cls,
        trainers: dict[str, Arm],
        base_config,
        *,
        lockstep: Lockstep | None = None,
        arms: Callable[[Any], dict[str, Any]] | None = None,
        fairness: bool = False,
    ) -> Run:
        """A run over existing trainers of any kind (lock-step when ``lockstep`` steps them; the image
        pair); its first frame is kept and evaluated."""
        run = cls(trainers, base_config, fairness=fairness, lockstep=lockstep, arms=arms)
        run.frames(evaluate=True, force_snapshot=True)
        return run

    # ---- state ----------------------------------------------------------------------------------
    @property
    def trainer(self) -> Arm:
        """The first arm's trainer (the only one of a single run)."""
        return next(iter(self.trainers.values()))

    @property
    def history(self) -> History:
        return next(iter(self.histories.values()))

    @property
    def config(self):
        return self.trainer.config

    @property
    def step(self) -> int:
        return min(t.step_count for t in self.trainers.values())

    @property
    def diverged(self) -> bool:
        return any(t.diverged for t in self.trainers.values())

    def label(self, name: str) -> str:
        """Arm ``name``'s drift, e.g. "baseline" or "lookahead K=1", with "(particles)" for a particle arm."""
        trainer = self.trainers[name]
        label = trainer.config.drift.label()
        return f"{label} (particles)" if isinstance(trainer, ParticleTrainer) else label

    def needs_reset(self, config, fairness: bool | None = None) -> list[str]:
        """The fields (and "fairness control") whose change needs a new run."""
        changed = reset_changes(self.base_config, config, self.trainer.LIVE_FIELDS)
        if fairness is not None and self.lockstep is not None and fairness != self.fairness:
            changed.append("fairness control")
        return changed

    def apply(self, config) -> list[str]:
        """Apply live changes to every arm (K to the lookahead arm, 2× lr to the control): each arm's
        trainer takes the fields its arm config changes, and keeps the rest of its own (an arm loaded
        from a checkpoint, a batch halved after running out of memory). Returns the changed field
        names. Raises ConfigError when a field that needs a new run changed."""
        if self.needs_reset(config):
            raise ConfigError("changing " + ", ".join(self.needs_reset(config)) + " needs a reset")
        changed: set[str] = set()
        old_arms, new_arms = self.arms(self.base_config), self.arms(config)
        with self.lock:
            for name, cfg in new_arms.items():
                before, after = old_arms[name].to_flat(), cfg.to_flat()
                delta = {k: v for k, v in after.items() if before[k] != v}
                trainer = self.trainers[name]
                changed.update(trainer.update(trainer.config.with_values(delta)))
            self.base_config = config
        return sorted(changed)

    # ---- training -------------------------------------------------------------------------------
    def advance(self, steps: int, *, wait: bool = True) -> Advance:
        """Up to ``steps`` steps of every arm; pauses (``playing = False``, ``message``) when an arm
        diverges (the model goes back to its newest kept state) or the step budget is used up. With
        ``wait=False`` it returns at once, ``busy``, while another caller trains this run."""
        if not self.lock.acquire(blocking=wait):
            return Advance(busy=True)
        try:
            return self._advance(steps)
        finally:
            self.lock.release()

    def _advance(self, steps: int) -> Advance:
        out = Advance()
        start = time.perf_counter()
        if self.diverged:
            out.paused_reason = self.message or "this run diverged; lower the learning rate and press Reset"
            self.playing = False
            return out
        budget = self.base_config.train.steps
        for _ in range(steps):
            if self.step >= budget:
                out.paused_reason = (
                    f"reached the step budget of {budget} steps; raise 'Step budget' to train on, or press Reset"
                )
                break
            if self.lockstep is not None:
                records = self.lockstep.step()
            else:
                records = {"run": self.trainer.step()}
            for name, record in records.items():
                self.histories[name].add_records([record])
            out.records.extend(records.values())
            bad = [name for name, r in records.items() if r.diverged]
            if bad:
                who = "the run" if self.lockstep is None else ", ".join(bad)
                failed_at = self.step + 1
                kept = self._restore(failed_at)
                where = (
                    f"The model went back to step {kept}, its newest kept state."
                    if kept is not None
                    else "No earlier state was kept."
                )
                out.paused_reason = (
                    f"{who} diverged at step {failed_at}: {records[bad[0]].message}. {where} "
                    "Lower the learning rate, then press Play (or Reset)."
                )
                break
            if self.step % TAPE_EVERY == 0:
                self._record_tape()
        out.train_s = time.perf_counter() - start
        if out.paused_reason:
            self.playing = False
            self.message = out.paused_reason
        return out

    def _record_tape(self) -> None:
        """Keep every arm's state (and the shared batch stream) under the current step."""
        for name, trainer in self.trainers.items():
            self.tapes[name].record(trainer)
        if self.lockstep is not None and all(self.step in tape for tape in self.tapes.values()):
            self.batch_states[self.step] = self.lockstep.batch_generator.get_state()
            for old in [s for s in self.batch_states if not all(s in t for t in self.tapes.values())]:
                del self.batch_states[old]

    def kept_steps(self) -> list[int]:
        """The steps whose state every arm still keeps (fork, step back), oldest first."""
        return sorted(s for s in next(iter(self.tapes.values())).steps if self.can_fork(s))

    def _restore(self, before: int) -> int | None:
        """Load every arm's newest kept state before step ``before`` (the batch stream too), drop
        the history after it and return its step; None when nothing earlier is kept. Arms stay
        marked diverged if they were, so the run stays paused until resumed."""
        earlier = [s for s in self.kept_steps() if s < before]
        if not earlier:
            return None
        step = earlier[-1]
        for name, trainer in self.trainers.items():
            diverged = trainer.diverged
            trainer.load_state_dict(copy.deepcopy(self.tapes[name].states[step]))  # the tape stays intact
            trainer.update(trainer.config)  # the current (perhaps lowered) learning rate, not the kept one
            trainer.diverged = diverged
            self.tapes[name].drop_after(step)
            self.histories[name].truncate(step)
        if self.lockstep is not None:
            self.lockstep.batch_generator.set_state(self.batch_states[step])
        return step

    def resume_after_divergence(self) -> None:
        """Back to the last finite state of every diverged arm, ready to train on."""
        with self.lock:
            for trainer in self.trainers.values():
                if trainer.diverged:
                    trainer.recover()
            self.message = ""

    def step_back(self) -> int:
        """Return the run to its newest kept state before the current step, drop the history after it
        and pause (a diverged run is resumed there). Returns that step; ValueError when no earlier
        state is kept."""
        with self.lock:
            step = self._restore(self.step)
            if step is None:
                raise ValueError("there is no earlier state to step back to; reset the run instead")
            for trainer in self.trainers.values():
                trainer.recover()
            self.playing = False
            self.message = ""
        return step

    def replace_arm(self, name: str, trainer: Arm) -> None:
        """Put ``trainer`` (e.g. loaded from a checkpoint) in place of arm ``name``, paused: its history
        and kept states start afresh at the trainer's step. KeyError for an unknown arm."""
        if name not in self.trainers:
            raise KeyError(f"no arm {name!r}; arms: {', '.join(self.trainers)}")
        with self.lock:
            self.trainers[name] = trainer
            if self.lockstep is not None:
                self.lockstep.trainers[name] = trainer
            self.histories[name] = History(max_snapshots=self.histories[name].snapshots.maxlen)
            self.tapes[name] = StateTape(TAPE_STATES, TAPE_BYTES)
            self.batch_states.clear()
            self.playing = False
            self.message = ""
            self.histories[name].add_snapshot(trainer.snapshot(DISPLAY_N), force=True)
            self.tapes[name].record(trainer)

    # ---- forking ----------------------------------------------------------------------------------
    def can_fork(self, step: int) -> bool:
        """Whether the state of ``step`` is still kept for every arm."""
        kept = all(step in tape for tape in self.tapes.values())
        return kept and (self.lockstep is None or step in self.batch_states)

    def fork(self, step: int, **changes) -> Run:
        """A new run continuing from the kept state of ``step`` with live settings changed (``K``,
        ``tau``, ``batch_size``, ``lr``...), with this run's history up to ``step``, its evaluator and
        axes. A Playground branch and a Compare fork are both this call. Raises KeyError when that
        step's state is no longer kept and ConfigError for a change that needs a new run."""
        with self.lock:
            if not self.can_fork(step):
                raise KeyError(f"the state of step {step} is no longer kept")
            config = self.base_config.with_values(changes)
            arms = self.arms(config) if self.lockstep is not None else {"run": self.config.with_values(changes)}
            trainers = {
                name: fork_at(self.tapes[name], step, cfg, like=self.trainers[name]) for name, cfg in arms.items()
            }
            lockstep = None
            if self.lockstep is not None:
                generator = make_generator(0)
                generator.set_state(self.batch_states[step])
                lockstep = Lockstep.of(trainers, generator)
            forked = Run(
                trainers,
                config,
                fairness=self.fairness,
                lockstep=lockstep,
                evaluator=self.evaluator,
                bounds=self.bounds,
                arms=self.arms,
            )
            forked.histories = {name: self.histories[name].until(step) for name in trainers}
            forked.frames(
                evaluate=True, force_snapshot=not forked.history.snapshots or forked.history.snapshots[-1].step != step
            )
        return forked

    def copy_now(self, **changes) -> Run:
        """A new single run from this run's network as it is now (weights, optimiser state, data
        stream), with live settings changed; this run is untouched. The Inspector continues the
        Playground's run this way."""
        with self.lock:
            trainer = self.trainer.spawn(self.config)
            trainer.load_state_dict(copy.deepcopy(self.trainer.state_dict()))
        trainer.update(trainer.config.with_values(changes))
        return Run.around(trainer)

    def branch(self, step: int, **changes) -> Run:
        """:meth:`fork`, kept in ``branches`` (named by its settings) to train beside this run."""
        forked = self.fork(step, **changes)
        cfg = forked.config
        name = f"fork @{step}: {cfg.drift.label()}, τ={cfg.drift.tau:g}, N={cfg.train.batch_size}"
        self.branches.append((name, forked))
        del self.branches[:-MAX_BRANCHES]
        return forked

    # ---- drawing and evaluation ---------------------------------------------------------------------
    def frames(self, n: int = DISPLAY_N, *, evaluate: bool | None = None, force_snapshot: bool = False) -> dict:
        """Each arm's current snapshot (a :class:`~drift_core.records.Snapshot` of ``n`` particles, or an
        image arm's :class:`~drift_core.images.train.ImageSnapshot`), kept in its history every few
        steps, and, when due (or ``evaluate``), metrics."""
        with self.lock:
            snaps = {name: t.snapshot(n) for name, t in self.trainers.items()}
            for name, snap in snaps.items():
                if self.histories[name].add_snapshot(snap, force=force_snapshot):
                    self.tapes[name].record(self.trainers[name])
            if self.lockstep is not None and all(self.step in tape for tape in self.tapes.values()):
                self._record_tape()
            if evaluate or (evaluate is None and time.perf_counter() - self.last_metric_time >= METRIC_EVERY_S):
                self._evaluate(snaps)
            self.frames_drawn += 1
        return snaps

    def frame(self, n: int = DISPLAY_N, *, evaluate: bool | None = None):
        """The first (or only) arm's snapshot; see :meth:`frames`."""
        return next(iter(self.frames(n, evaluate=evaluate).values()))

    def evaluate(self) -> dict[str, dict[str, float]]:
        """Evaluate every arm now (kept in the histories); returns the metrics per arm (2D arms only:
        an image arm's is empty)."""
        with self.lock:
            return self._evaluate({name: t.snapshot(DISPLAY_N) for name, t in self.trainers.items()})

    def _evaluate(self, snaps: dict) -> dict[str, dict[str, float]]:
        if not self.planar:
            self.last_metric_time = time.perf_counter()
            return {name: {} for name in self.trainers}
        first = self.trainers[next(iter(snaps))]
        generated, positives = (t.detach().float().cpu() for t in first.display_sets(DISPLAY_N))  # in D dimensions
        self.kernel_share = None
        if torch.isfinite(generated).all():
            self.kernel_share = data_kernel_share(generated, positives, first.config.drift)
        out = {}
        for name, trainer in self.trainers.items():
            values = self.evaluator(trainer)
            out[name] = values
            history = self.histories[name]
            if values and (not history.metrics or history.metrics[-1].step != trainer.step_count):
                history.add_metrics(trainer.step_count, trainer.wall_s, values)
            self._check_runaway(name, history)
        self.last_metric_time = time.perf_counter()
        return out

    def _check_runaway(self, name: str, history: History) -> None:
        """Pause, with the reason, when an arm's outputs have run away from the data: its energy
        distance has grown to ``RUNAWAY`` times its first evaluation (and past 1, far beyond what a
        training run on this data passes through). Finite numbers, so no divergence is flagged, but
        training will not come back from there at this learning rate."""
        energies = [m.values["energy"] for m in history.metrics if "energy" in m.values]
        if len(energies) < 2 or not self.playing or name in self.runaway_flagged:
            return
        first, last = energies[0], energies[-1]
        if last > max(1.0, RUNAWAY * first):
            self.runaway_flagged.add(name)  # said once: Play then trains on (a lowered lr may bring it back)
            who = "The run's outputs" if self.lockstep is None else f"The outputs of {name}"
            self.playing = False
            self.message = (
                f"{who} ran away from the data: the energy distance grew from {first:.3g} to {last:.3g} "
                f"by step {history.metrics[-1].step}. The learning rate is too high for this setup: "
                "lower it and press Play, step back, or Reset."
            )
