"""Live runs behind the app's pages: a trainer (or lock-step trainers) with its history, evaluation
reference, fixed drawing bounds and play state. No Streamlit here: one object per browser session is
kept in ``st.session_state`` by :mod:`ui.state`, and tests can drive these classes directly.

All the mathematics is in ``drift_core``; this module only sequences it (step, stop on divergence or
at the step budget, evaluate, snapshot).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from drift_core.config import RESET_FIELDS, ConfigError, ExperimentConfig
from drift_core.data.toy2d import MIXTURE_SIGMA, mixture_modes
from drift_core.history import History
from drift_core.metrics import energy_distance, mode_coverage, sliced_wasserstein
from drift_core.probes import DataKernelShare, data_kernel_share
from drift_core.runtime import make_generator
from drift_core.train import Lockstep, Snapshot, StepRecord, Trainer

def configure_torch_threads(environ=os.environ) -> int:
    """Intra-op threads for training in the app server: DRIFT_TORCH_THREADS, default 1.

    A Streamlit server trains one small model per session in its own thread; several sessions (and
    other processes) share the cores, and torch's multi-threaded kernels then spin against each other.
    Measured on the 2-core development container under load: 18 ms per default playground step with
    1 thread versus 400 ms with 2. Returns the thread count in force."""
    try:
        wanted = max(1, int(environ.get("DRIFT_TORCH_THREADS", "1")))
    except ValueError:
        wanted = 1
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


DISPLAY_N = 512
"""Particles drawn per view (the trainers' fixed display noise holds 512)."""
METRIC_EVERY_S = 0.5
"""Evaluate metrics at most this often while playing (they cost more than a training step)."""


def reset_changes(old: ExperimentConfig, new: ExperimentConfig) -> list[str]:
    """Names of the fields that differ between two configs and need a reset."""
    a, b = old.to_flat(), new.to_flat()
    return [k for k in b if k in RESET_FIELDS and a[k] != b[k]]


def view_bounds(*samples: np.ndarray, margin: float = 0.15, min_span: float = 0.5) -> tuple[float, float, float, float]:
    """A square box (xmin, xmax, ymin, ymax) holding every finite point of ``samples`` with a margin;
    fixed for a run so the axes never jump."""
    pts = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in samples])
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return (-1.5, 1.5, -1.5, 1.5)
    lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    span = max(float((hi - lo).max()) * (1 + 2 * margin), min_span)
    mid = (lo + hi) / 2
    return (mid[0] - span / 2, mid[0] + span / 2, mid[1] - span / 2, mid[1] + span / 2)


@dataclass
class Evaluator:
    """Fixed reference sample (same size as the display set, so sliced W2 sorts without quantiles) and
    the dataset's modes when it is a mixture."""

    reference: torch.Tensor
    modes: torch.Tensor | None
    sigma: float | None

    @classmethod
    def for_trainer(cls, trainer: Trainer) -> "Evaluator":
        ref = trainer.sampler(DISPLAY_N, generator=make_generator(trainer.config.train.seed + 4))
        name = trainer.config.data.dataset
        return cls(ref, mixture_modes(name), MIXTURE_SIGMA.get(name))

    def __call__(self, generated: np.ndarray) -> dict[str, float]:
        g = torch.as_tensor(generated, dtype=torch.float32)
        if not torch.isfinite(g).all():
            return {}
        out = {"energy": energy_distance(g, self.reference), "sliced_w2": sliced_wasserstein(g, self.reference, 64)}
        if self.modes is not None and self.sigma is not None:
            cov = mode_coverage(g, self.modes, self.sigma)
            out["modes_covered"] = float(cov.covered)
        return out


def _kernel_share(snap: Snapshot, config: ExperimentConfig) -> DataKernelShare | None:
    g = torch.as_tensor(snap.generated, dtype=torch.float32)
    if not torch.isfinite(g).all():
        return None
    return data_kernel_share(g, torch.as_tensor(snap.positives, dtype=torch.float32), config.drift)


def kernel_share_warning(share: DataKernelShare | None, config: ExperimentConfig) -> str:
    """Why nothing moves, in words, when the data's kernel weight has vanished (else "")."""
    if share is None or not share.vanished:
        return ""
    how = ("distances are normalised by the batch's mean distance" if config.drift.normalize_distance
           else "distances are raw (turn on 'Normalise distances' under 'More drift settings')")
    return (f"The particles cannot see the data: the data gets {share.share:.0e} of each particle's kernel "
            f"weight, so V ≈ 0 and nothing moves. The nearest data point is {share.nearest_data:.2g} away, "
            f"{share.nearest_data / share.tau:.0f} temperatures at τ = {share.tau:g}, and {how}. "
            "Raise τ or normalise distances.")


@dataclass
class Advance:
    """What one frame of training did: records, why it paused (empty if it did not), and whether it was
    skipped because another script run was training this run at that moment (``busy``)."""

    records: list[StepRecord] = field(default_factory=list)
    paused_reason: str = ""
    train_s: float = 0.0
    busy: bool = False


class _Guarded:
    """One training step at a time per run, whatever script runs overlap.

    Streamlit can start a new script thread for a session before the previous one has stopped (a click
    arriving mid-frame): two threads would then step one model and its Adam state at once. Every
    method that reads or changes the trainers holds ``lock``; an animation frame that finds it held
    skips its training (``advance(..., wait=False)``) instead of queueing behind it."""

    lock: threading.RLock

    def _advance_guarded(self, steps: int, wait: bool) -> Advance:
        if not self.lock.acquire(blocking=wait):
            return Advance(busy=True)
        try:
            return self._advance(steps)
        finally:
            self.lock.release()


@dataclass
class PlaygroundRun(_Guarded):
    """One live trainer with its history (Playground and Inspector)."""

    trainer: Trainer
    history: History
    evaluator: Evaluator
    bounds: tuple[float, float, float, float]
    playing: bool = False
    message: str = ""
    last_metric_time: float = 0.0
    frames: int = 0
    kernel_share: DataKernelShare | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def create(cls, config: ExperimentConfig, points: torch.Tensor | None = None) -> "PlaygroundRun":
        trainer = Trainer(config, points=points)
        snap = trainer.snapshot(DISPLAY_N)
        run = cls(trainer, History(), Evaluator.for_trainer(trainer), view_bounds(snap.positives, snap.generated))
        run.history.add_snapshot(snap, force=True)
        run.evaluate(snap)
        return run

    @property
    def config(self) -> ExperimentConfig:
        return self.trainer.config

    @property
    def step(self) -> int:
        return self.trainer.step_count

    @property
    def budget_left(self) -> int:
        return max(0, self.config.train.steps - self.step)

    def apply(self, config: ExperimentConfig) -> list[str]:
        """Apply live changes; returns the changed field names. Raises ConfigError for reset fields."""
        with self.lock:
            return self.trainer.update(config)

    def advance(self, steps: int, *, wait: bool = True) -> Advance:
        """Up to ``steps`` training steps; stops at divergence (pauses with the reason) or when the step
        budget is used up (pauses). With ``wait=False`` it returns at once (``busy``) while another
        thread trains this run."""
        return self._advance_guarded(steps, wait)

    def _advance(self, steps: int) -> Advance:
        out = Advance()
        start = time.perf_counter()
        if self.trainer.diverged:
            out.paused_reason = self.message or "this run diverged; press Reset (or lower the learning rate)"
            self.playing = False
            return out
        for _ in range(steps):
            if self.budget_left <= 0:
                out.paused_reason = (f"reached the step budget of {self.config.train.steps} steps; raise "
                                     "'Step budget' to train on, or press Reset")
                break
            record = self.trainer.step()
            out.records.append(record)
            if record.diverged:
                out.paused_reason = (f"the run diverged at step {record.step + 1}: {record.message}. The model "
                                     "was kept at its last finite state. Lower the learning rate, then press "
                                     "Reset (or Resume to try again).")
                break
        out.train_s = time.perf_counter() - start
        self.history.add_records(out.records)
        if out.paused_reason:
            self.playing = False
            self.message = out.paused_reason
        return out

    def resume_after_divergence(self) -> None:
        with self.lock:
            self.trainer.recover()
            self.message = ""

    def frame(self, n: int = DISPLAY_N, *, evaluate: bool | None = None) -> Snapshot:
        """The current snapshot (kept in the history every few steps) and, when due, metrics."""
        with self.lock:
            return self._frame(n, evaluate)

    def _frame(self, n: int, evaluate: bool | None) -> Snapshot:
        snap = self.trainer.snapshot(n)
        self.history.add_snapshot(snap)
        now = time.perf_counter()
        if evaluate or (evaluate is None and now - self.last_metric_time >= METRIC_EVERY_S):
            self.evaluate(snap)
        self.frames += 1
        return snap

    def evaluate(self, snap: Snapshot) -> dict[str, float]:
        self.kernel_share = _kernel_share(snap, self.config)
        values = self.evaluator(snap.generated)
        self.last_metric_time = time.perf_counter()
        if values and (not self.history.metrics or self.history.metrics[-1].step != snap.step):
            self.history.add_metrics(snap.step, self.trainer.wall_s, values)
        return values



def compare_configs(config: ExperimentConfig, fairness: bool) -> dict[str, ExperimentConfig]:
    """The arms of a comparison: baseline (K = 0), lookahead (the config's K, at least 1) and optionally a
    baseline with doubled learning rate (the fairness control: lookahead also takes a bigger step)."""
    k = max(1, config.drift.K)
    arms = {
        "baseline": config.with_values({"method": "baseline"}),
        "lookahead": config.with_values({"method": "lookahead", "K": k}),
    }
    if fairness:
        arms["baseline 2×lr"] = config.with_values({"method": "baseline", "lr": min(1.0, 2 * config.train.lr)})
    return arms


@dataclass
class CompareRun(_Guarded):
    """Lock-step trainers (same seed, same batches) with one history per arm."""

    lockstep: Lockstep
    histories: dict[str, History]
    evaluator: Evaluator
    bounds: tuple[float, float, float, float]
    base_config: ExperimentConfig
    fairness: bool
    playing: bool = False
    message: str = ""
    last_metric_time: float = 0.0
    kernel_share: DataKernelShare | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def create(cls, config: ExperimentConfig, fairness: bool, points: torch.Tensor | None = None) -> "CompareRun":
        lockstep = Lockstep(compare_configs(config, fairness), points=points)
        first = next(iter(lockstep.trainers.values()))
        snap = first.snapshot(DISPLAY_N)
        run = cls(lockstep, {name: History() for name in lockstep.trainers}, Evaluator.for_trainer(first),
                  view_bounds(snap.positives, snap.generated), config, fairness)
        run.evaluate({name: t.snapshot(DISPLAY_N) for name, t in lockstep.trainers.items()})
        return run

    @property
    def trainers(self) -> dict[str, Trainer]:
        return self.lockstep.trainers

    @property
    def step(self) -> int:
        return min(t.step_count for t in self.trainers.values())

    def needs_reset(self, config: ExperimentConfig, fairness: bool) -> list[str]:
        changed = reset_changes(self.base_config, config)
        if fairness != self.fairness:
            changed.append("fairness control")
        return changed

    def apply(self, config: ExperimentConfig) -> list[str]:
        """Live changes for every arm (K goes to the lookahead arm; lr is doubled for the 2×lr arm)."""
        if reset_changes(self.base_config, config):
            raise ConfigError("changing " + ", ".join(reset_changes(self.base_config, config)) + " needs a reset")
        changed: set[str] = set()
        with self.lock:
            for name, cfg in compare_configs(config, self.fairness).items():
                changed.update(self.lockstep.update(name, cfg))
            self.base_config = config
        return sorted(changed)

    def advance(self, steps: int, *, wait: bool = True) -> Advance:
        """Every arm up to ``steps`` lock-step steps (see :meth:`PlaygroundRun.advance`)."""
        return self._advance_guarded(steps, wait)

    def _advance(self, steps: int) -> Advance:
        out = Advance()
        start = time.perf_counter()
        if any(t.diverged for t in self.trainers.values()):
            out.paused_reason = self.message or "an arm diverged; lower the learning rate and press Reset"
            self.playing = False
            return out
        budget = self.base_config.train.steps
        for _ in range(steps):
            if self.step >= budget:
                out.paused_reason = f"reached the step budget of {budget} steps; raise 'Step budget' or press Reset"
                break
            records = self.lockstep.step()
            for name, record in records.items():
                self.histories[name].add_records([record])
            out.records.extend(records.values())
            bad = [name for name, r in records.items() if r.diverged]
            if bad:
                out.paused_reason = (f"{', '.join(bad)} diverged at step {self.step + 1}: "
                                     f"{records[bad[0]].message}. Lower the learning rate and press Reset.")
                break
        out.train_s = time.perf_counter() - start
        if out.paused_reason:
            self.playing = False
            self.message = out.paused_reason
        return out

    def frame(self, n: int = DISPLAY_N, *, evaluate: bool | None = None) -> dict[str, Snapshot]:
        with self.lock:
            snaps = {name: t.snapshot(n) for name, t in self.trainers.items()}
            for name, snap in snaps.items():
                self.histories[name].add_snapshot(snap)
            if evaluate or (evaluate is None and time.perf_counter() - self.last_metric_time >= METRIC_EVERY_S):
                self.evaluate(snaps)
        return snaps

    def evaluate(self, snaps: dict[str, Snapshot]) -> None:
        first = next(iter(snaps))
        self.kernel_share = _kernel_share(snaps[first], self.trainers[first].config)
        for name, snap in snaps.items():
            values = self.evaluator(snap.generated)
            hist = self.histories[name]
            if values and (not hist.metrics or hist.metrics[-1].step != snap.step):
                hist.add_metrics(snap.step, self.trainers[name].wall_s, values)
        self.last_metric_time = time.perf_counter()

