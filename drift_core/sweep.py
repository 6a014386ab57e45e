"""Hyperparameter sweeps: a small grid over two of K, tau, batch size and learning rate, each cell
repeated over one or more seeds.

A *trial* is one cell at one seed: it trains one seeded :class:`~drift_core.train.Trainer` for
``steps`` steps (cells differ only in the two swept settings, seeds only in the seed) and measures
the final generated distribution with the run's :class:`~drift_core.run.Evaluator` (its fixed
evaluation noise against its fixed reference sample, both drawn from the trial's seed):

* ``energy``: energy distance (lower is better),
* ``w2``: exact W2 with POT (lower is better),
* ``modes``: modes covered (mixture datasets only; higher is better; NaN elsewhere),

and keeps ``particles`` final generated points for a thumbnail. All metrics are stored, so the
heatmap can switch metric without re-running. A cell reports the mean over its seeds and their
spread (sample standard deviation), and :meth:`SweepResult.verdict` says whether the best cell is
separated from the others by more than that spread.

Trials are independent, so they run anywhere: :func:`run_sweep` runs them one after another in the
calling thread; :class:`SweepJob` submits them to a pool of worker processes of its own or to any
``concurrent.futures.Executor`` (a Dask distributed ``Client.get_executor()`` for a cluster). Every
trial trains and measures with :data:`TRIAL_TORCH_THREADS` torch thread wherever it runs, so the
numbers are identical whatever the number of workers.

Results are cached per trial on disk (``DRIFT_CACHE_DIR``, default ``~/.cache/drift_lab/sweeps``) as
``.npz`` files read with ``allow_pickle=False``; the key is a SHA-256 of the trial's config JSON (the
seed included) and the evaluation settings, so a repeated, extended or cancelled-then-restarted sweep
is instant for the trials already done. A file is written to a temporary file in the same folder and
renamed into place (``os.replace``), so workers sharing the folder never see a half-written entry; an
entry that cannot be read is recomputed, with a warning. Nothing here prints or draws.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import types
import warnings
import weakref
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ConfigError, ExperimentConfig
from .data.toy2d import MIXTURE_SIGMA, SAMPLERS, mixture_modes
from .limits import Limits
from .metrics import energy_distance, mode_coverage, wasserstein2
from .run import EVAL_SAMPLES, Evaluator, Run
from .runtime import stream
from .train import Trainer

__all__ = [
    "AXES",
    "METRICS",
    "CACHE_VERSION",
    "TRIAL_TORCH_THREADS",
    "SweepSpec",
    "TrialResult",
    "SweepResult",
    "SweepJob",
    "run_sweep",
    "run_trial",
    "compute_trial",
    "sweep_trial_task",
    "cache_dir",
    "parse_axis_values",
    "parse_seeds",
    "prepare_workers",
    "default_workers",
]

AXES: dict[str, str] = {
    "K": "lookahead terms K",
    "tau": "temperature tau",
    "batch_size": "batch size N",
    "lr": "learning rate",
}
"""The settings a sweep can vary, with a readable name each."""

METRICS: dict[str, tuple[str, bool]] = {
    "energy": ("energy distance", True),
    "w2": ("W2 (exact)", True),
    "modes": ("modes covered", False),
}
"""metric key -> (readable name, lower is better)."""

CACHE_VERSION = 4
"""Bumped when what a trial computes changes, so old cache files are not reused (3: one torch thread
per trial, seeds; 4: normalised fields floor the mean square at 1e-8, not the RMS)."""

TRIAL_TORCH_THREADS = 1
"""Torch threads a trial trains and measures with, wherever it runs. torch splits its reductions by
thread count, so the last bits of a metric depend on it; one thread everywhere keeps the numbers of a
serial run, a process pool and a cluster identical (and one thread per worker process is the fastest
use of a few cores for models this small)."""

_AXIS_TYPES = {"K": int, "tau": float, "batch_size": int, "lr": float}
MAX_CELLS = 64
MAX_SEEDS = 16


def cache_dir() -> Path:
    """Where trial results are cached: ``$DRIFT_CACHE_DIR`` or ``~/.cache/drift_lab/sweeps``."""
    env = os.environ.get("DRIFT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "drift_lab" / "sweeps"


def default_workers() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _comma_items(text: str | Sequence) -> list:
    items = text.split(",") if isinstance(text, str) else list(text)
    return [v for v in items if not (isinstance(v, str) and not v.strip())]


def parse_axis_values(axis: str, text: str | Sequence) -> tuple:
    """Parse "0,1,2" (or a sequence) into typed, de-duplicated values of a sweep axis, in order."""
    if axis not in AXES:
        raise ConfigError(f"cannot sweep {axis!r}; choose two of {', '.join(AXES)}")
    kind = _AXIS_TYPES[axis]
    values = []
    for item in _comma_items(text):
        try:
            value = kind(float(item)) if kind is int and float(item).is_integer() else kind(item)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(
                f"{axis} values must be {'integers' if kind is int else 'numbers'}, got {item!r}"
            ) from None
        if value not in values:
            values.append(value)
    if not values:
        raise ConfigError(f"no values given for {axis}")
    return tuple(values)


def parse_seeds(text: str | Sequence) -> tuple[int, ...]:
    """Parse "0,1,2" (or a sequence) into de-duplicated non-negative integer seeds, in order."""
    seeds: list[int] = []
    for item in _comma_items(text):
        try:
            seed = int(item) if not isinstance(item, float) or item.is_integer() else None
        except (TypeError, ValueError):
            seed = None
        if seed is None or isinstance(item, bool) or seed < 0:
            raise ConfigError(f"seeds must be non-negative integers, got {item!r}")
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise ConfigError("no seeds given")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"at most {MAX_SEEDS} seeds per cell, got {len(seeds)}")
    return tuple(seeds)


@dataclass(frozen=True)
class SweepSpec:
    """A grid: ``y_values`` are rows, ``x_values`` columns; every cell is ``base`` with the two axes set
    and ``steps`` training steps, repeated for each of ``seeds``.

    Args:
        base: the shared configuration (dataset, model, the settings not swept).
        x_axis, y_axis: two different names from :data:`AXES`.
        steps: training steps per trial.
        eval_samples: generated and reference samples for the metrics.
        particles: final generated points kept per trial (thumbnails).
        seeds: the seeds every cell is trained with; empty means the base configuration's seed alone.
    """

    base: ExperimentConfig
    x_axis: str
    x_values: tuple
    y_axis: str
    y_values: tuple
    steps: int
    eval_samples: int = 1024
    particles: int = 256
    seeds: tuple = ()

    def __post_init__(self):
        if self.x_axis not in AXES or self.y_axis not in AXES:
            raise ConfigError(f"sweep axes must be two of {', '.join(AXES)}")
        if self.x_axis == self.y_axis:
            raise ConfigError("pick two different axes")
        object.__setattr__(self, "x_values", parse_axis_values(self.x_axis, self.x_values))
        object.__setattr__(self, "y_values", parse_axis_values(self.y_axis, self.y_values))
        object.__setattr__(self, "seeds", parse_seeds(self.seeds) if len(self.seeds) else (self.base.train.seed,))
        if self.base.data.dataset == "custom":
            raise ConfigError("sweeps run on the built-in datasets (not an uploaded point set)")
        if not 1 <= self.steps <= 100_000:
            raise ConfigError("steps per cell must be between 1 and 100000")
        if self.eval_samples < 16 or self.particles < 1:
            raise ConfigError("eval_samples must be >= 16 and particles >= 1")
        if len(self.x_values) * len(self.y_values) > MAX_CELLS:
            raise ConfigError(f"at most {MAX_CELLS} cells per sweep, got {len(self.x_values)} x {len(self.y_values)}")
        limits = Limits.from_env()
        for i, j in self.cells():
            limits.check(self.trial_config(i, j))  # also validates every cell
        for s in range(1, len(self.seeds)):
            limits.check(self.trial_config(0, 0, s))  # and every seed

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y_values), len(self.x_values)

    def trial_config(self, i: int, j: int, s: int = 0) -> ExperimentConfig:
        """The configuration of row i (y_values[i]), column j (x_values[j]) and seed number s (seeds[s])."""
        return self.base.with_values(
            {"steps": self.steps, "seed": self.seeds[s], self.y_axis: self.y_values[i], self.x_axis: self.x_values[j]}
        )

    def cells(self) -> list[tuple[int, int]]:
        """(row, column) of every cell, row by row."""
        return [(i, j) for i in range(self.shape[0]) for j in range(self.shape[1])]

    def trials(self) -> list[tuple[int, int, int]]:
        """(row, column, seed number) of every trial: cell by cell, the seeds of a cell together."""
        return [(i, j, s) for i, j in self.cells() for s in range(len(self.seeds))]

    def trial_key(self, i: int, j: int, s: int = 0) -> str:
        """SHA-256 of everything a trial's result depends on (config JSON with its seed, evaluation
        settings, the cache version)."""
        payload = {
            "version": CACHE_VERSION,
            "config": json.loads(self.trial_config(i, j, s).to_json()),
            "eval_samples": self.eval_samples,
            "particles": self.particles,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def key(self) -> str:
        """SHA-256 of the whole sweep (the trial keys in order and the axes)."""
        payload = {
            "x": [self.x_axis, list(self.x_values)],
            "y": [self.y_axis, list(self.y_values)],
            "trials": [self.trial_key(*t) for t in self.trials()],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def cell_label(self, i: int, j: int) -> str:
        """ "tau=0.05, K=1": the cell's two settings."""
        return f"{self.y_axis}={self.y_values[i]:g}, {self.x_axis}={self.x_values[j]:g}"

    def to_dict(self) -> dict:
        return {
            "base": self.base.to_dict(),
            "x_axis": self.x_axis,
            "x_values": list(self.x_values),
            "y_axis": self.y_axis,
            "y_values": list(self.y_values),
            "steps": self.steps,
            "eval_samples": self.eval_samples,
            "particles": self.particles,
            "seeds": list(self.seeds),
        }


@dataclass(frozen=True)
class TrialResult:
    """One trial: metrics {energy, w2, modes, high_quality}, final particles [P, 2], wall seconds of
    training, whether training diverged (then the metrics describe the last finite state)."""

    metrics: dict[str, float]
    particles: np.ndarray
    train_s: float
    diverged: bool
    steps_done: int
    from_cache: bool = False


def _nan_stat(values: np.ndarray, stat: Callable, minimum: int) -> np.ndarray:
    """``stat`` over the last axis, ignoring NaN; NaN where fewer than ``minimum`` values are finite."""
    count = np.isfinite(values).sum(-1)
    out = np.full(values.shape[:-1], np.nan)
    enough = count >= minimum
    if enough.any():
        out[enough] = stat(values[enough])
    return out


@dataclass
class SweepResult:
    """A (possibly partial) sweep. ``trials`` maps (row, column, seed number) to the finished trials
    (a cancelled sweep has fewer than ``spec.trials()``)."""

    spec: SweepSpec
    trials: dict[tuple[int, int, int], TrialResult]
    reference: np.ndarray  # [P, 2] reference points (of the first seed) for the thumbnails
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return all(t in self.trials for t in self.spec.trials())

    @property
    def cached_trials(self) -> int:
        return sum(1 for t in self.trials.values() if t.from_cache)

    def trial(self, i: int, j: int, s: int = 0) -> TrialResult | None:
        return self.trials.get((i, j, s))

    def cell_trials(self, i: int, j: int) -> list[TrialResult]:
        """The finished trials of cell (i, j), in seed order."""
        return [t for s in range(len(self.spec.seeds)) if (t := self.trials.get((i, j, s))) is not None]

    def values(self, metric: str) -> np.ndarray:
        """The metric of every trial [rows, cols, seeds]; NaN where not run or not defined."""
        if metric not in METRICS and metric != "high_quality":
            raise KeyError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        out = np.full((*self.spec.shape, len(self.spec.seeds)), np.nan)
        for (i, j, s), trial in self.trials.items():
            out[i, j, s] = trial.metrics.get(metric, math.nan)
        return out

    def mean(self, metric: str) -> np.ndarray:
        """The metric's mean over each cell's seeds [rows, cols]; NaN where no seed gave a value."""
        return _nan_stat(self.values(metric), lambda v: np.nanmean(v, axis=-1), 1)

    def std(self, metric: str) -> np.ndarray:
        """The spread: sample standard deviation over each cell's seeds (ddof = 1) [rows, cols]; NaN
        where fewer than two seeds gave a value (one seed says nothing about seed noise)."""
        return _nan_stat(self.values(metric), lambda v: np.nanstd(v, axis=-1, ddof=1), 2)

    def seeds_done(self) -> np.ndarray:
        """Finished trials per cell [rows, cols]."""
        out = np.zeros(self.spec.shape, dtype=int)
        for i, j, _ in self.trials:
            out[i, j] += 1
        return out

    def best_cell(self, metric: str) -> tuple[int, int] | None:
        """The cell with the best mean, or None when no cell has a value."""
        values = self.mean(metric)
        if np.isnan(values).all():
            return None
        lower = METRICS.get(metric, ("", True))[1]
        i, j = np.unravel_index(np.nanargmin(values) if lower else np.nanargmax(values), values.shape)
        return int(i), int(j)

    def not_separated_from_best(self, metric: str) -> list[tuple[int, int]]:
        """The other cells whose mean ± std interval overlaps the best cell's: the seeds do not tell
        them apart (a rule of thumb, not a significance test). Empty when the spread is unknown (fewer
        than two seeds) or the best cell is separated from every other."""
        best = self.best_cell(metric)
        if best is None:
            return []
        mean, std = self.mean(metric), self.std(metric)
        if not np.isfinite(std[best]):
            return []
        out = []
        for cell in self.spec.cells():
            if cell != best and np.isfinite(mean[cell]) and np.isfinite(std[cell]):
                if abs(mean[cell] - mean[best]) <= std[cell] + std[best]:
                    out.append(cell)
        return out

    def verdict(self, metric: str) -> str:
        """One or two sentences on the best cell and whether seed noise could explain it."""
        best = self.best_cell(metric)
        if best is None:
            return ""
        spec, name = self.spec, METRICS.get(metric, (metric, True))[0]
        seeds = int(self.seeds_done()[best])
        if seeds < 2 or not np.isfinite(self.std(metric)[best]):
            return (
                f"Best {name}: {spec.cell_label(*best)}, from one seed per cell: how much the numbers move "
                "from seed to seed is unknown, so this may be seed noise. Repeat every cell over several "
                "seeds to tell."
            )
        ties = self.not_separated_from_best(metric)
        head = f"Best {name} (mean of {seeds} seeds): {spec.cell_label(*best)}"
        if not ties:
            return f"{head}, separated from every other cell by more than the spread (mean ± std do not overlap)."
        listed = "; ".join(spec.cell_label(*c) for c in ties[:6]) + ("; …" if len(ties) > 6 else "")
        return (
            f"{head}, but not separated from {len(ties)} other cell(s) by more than the spread (mean ± std "
            f"overlap): {listed}. At {seeds} seeds these are a tie, not a finding."
        )

    def rows(self) -> list[dict]:
        """One row per cell with at least one finished trial (CSV): the two settings, the number of
        seeds, each metric's mean and std over the seeds, diverged seeds, mean training seconds and the
        trials that came from the cache."""
        spec, out = self.spec, []
        stats = {m: (self.mean(m), self.std(m)) for m in (*METRICS, "high_quality")}
        for i, j in spec.cells():
            trials = self.cell_trials(i, j)
            if not trials:
                continue
            row = {
                spec.y_axis: spec.y_values[i],
                spec.x_axis: spec.x_values[j],
                "row": i,
                "col": j,
                "seeds": len(trials),
            }
            for metric, (mean, std) in stats.items():
                row[f"{metric}_mean"], row[f"{metric}_std"] = float(mean[i, j]), float(std[i, j])
            row.update(
                {
                    "diverged": sum(t.diverged for t in trials),
                    "steps": spec.steps,
                    "train_s": round(float(np.mean([t.train_s for t in trials])), 4),
                    "cached": sum(t.from_cache for t in trials),
                }
            )
            out.append(row)
        return out

    def trial_rows(self) -> list[dict]:
        """One row per finished trial (CSV), in trial order."""
        spec, out = self.spec, []
        for i, j, s in spec.trials():
            trial = self.trials.get((i, j, s))
            if trial is None:
                continue
            out.append(
                {
                    spec.y_axis: spec.y_values[i],
                    spec.x_axis: spec.x_values[j],
                    "row": i,
                    "col": j,
                    "seed": spec.seeds[s],
                    **{k: trial.metrics.get(k, math.nan) for k in (*METRICS, "high_quality")},
                    "diverged": trial.diverged,
                    "steps": trial.steps_done,
                    "train_s": round(trial.train_s, 4),
                    "cached": trial.from_cache,
                }
            )
        return out


ProgressFn = Callable[[float, str], None]


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


def _trial_metrics(generated: torch.Tensor, reference: torch.Tensor, dataset: str) -> dict[str, float]:
    finite = torch.isfinite(generated).all(1)
    g = generated[finite]
    if g.shape[0] < 2:
        return {"energy": math.nan, "w2": math.nan, "modes": math.nan, "high_quality": math.nan}
    out = {"energy": energy_distance(g, reference), "w2": wasserstein2(g, reference)}
    modes = mixture_modes(dataset)
    if modes is not None:
        cov = mode_coverage(g, modes, MIXTURE_SIGMA[dataset])
        out["modes"], out["high_quality"] = float(cov.covered), cov.high_quality
    else:
        out["modes"], out["high_quality"] = math.nan, math.nan
    return out


_UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile)


def _load_trial(path: Path) -> TrialResult | None:
    """The cached trial at ``path``; None when there is none, or (with a warning) when the file
    cannot be read: the trial is then recomputed and the file replaced."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            particles = np.array(data["particles"], dtype=np.float32)
        if particles.ndim != 2 or particles.shape[1] != 2:
            raise ValueError(f"particles of shape {particles.shape}")
        return TrialResult(
            metrics={k: float(v) for k, v in meta["metrics"].items()},
            particles=particles,
            train_s=float(meta["train_s"]),
            diverged=bool(meta["diverged"]),
            steps_done=int(meta["steps_done"]),
            from_cache=True,
        )
    except _UNREADABLE as err:
        warnings.warn(
            f"sweep cache entry {path} could not be read ({type(err).__name__}: {err}); recomputing it",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _save_trial(path: Path, trial: TrialResult) -> None:
    """Write atomically: a temporary file in the same folder (a unique name per writer), then
    ``os.replace``, so a reader, or another worker writing the same entry, never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "metrics": trial.metrics,
        "train_s": trial.train_s,
        "diverged": trial.diverged,
        "steps_done": trial.steps_done,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, particles=trial.particles, meta=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_trial(
    config: ExperimentConfig,
    *,
    eval_samples: int,
    particles: int,
    cancel: threading.Event | None = None,
    on_step: Callable[[int], None] | None = None,
) -> TrialResult | None:
    """Train one configuration for ``config.train.steps`` steps and measure it, with
    :data:`TRIAL_TORCH_THREADS` torch threads. Returns None if cancelled before the end. ``cancel`` is
    anything with ``is_set()`` (a threading or multiprocessing Event)."""
    with _torch_threads(TRIAL_TORCH_THREADS):
        trainer = Trainer(config)
        run = Run({"run": trainer}, config)
        evaluator = run.evaluator if eval_samples == EVAL_SAMPLES else Evaluator.for_trainer(trainer, eval_samples)
        diverged = False
        while run.step < config.train.steps:
            if cancel is not None and cancel.is_set():
                return None
            advance = run.advance(1)  # the cancel flag is looked at before every step
            if on_step is not None:
                on_step(run.step)
            if advance.paused_reason and any(r.diverged for r in advance.records):
                diverged = True
                break
        generated = evaluator.generated(trainer)  # the one evaluation convention (drift_core.run.Evaluator)
        metrics = _trial_metrics(generated, evaluator.reference, config.data.dataset)
    return TrialResult(
        metrics=metrics,
        particles=generated[:particles].numpy().astype(np.float32),
        train_s=trainer.wall_s,
        diverged=diverged,
        steps_done=trainer.step_count,
    )


def _trial_path(spec: SweepSpec, trial: tuple[int, int, int], directory: Path) -> Path:
    return directory / f"{spec.trial_key(*trial)}.npz"


def compute_trial(
    spec: SweepSpec,
    i: int,
    j: int,
    s: int = 0,
    *,
    use_cache: bool = True,
    directory: Path | None = None,
    cancel=None,
    on_step: Callable[[int], None] | None = None,
) -> TrialResult | None:
    """Trial (i, j, s) of ``spec``: from the cache when it is there, else trained (and then cached).
    Returns None if cancelled first. :func:`run_sweep` and every worker of :class:`SweepJob` compute
    trials with this one function, so they give the same numbers."""
    directory = cache_dir() if directory is None else Path(directory)
    path = _trial_path(spec, (i, j, s), directory)
    trial = _load_trial(path) if use_cache else None
    if trial is not None:
        return trial
    trial = run_trial(
        spec.trial_config(i, j, s),
        eval_samples=spec.eval_samples,
        particles=spec.particles,
        cancel=cancel,
        on_step=on_step,
    )
    if trial is not None and use_cache:
        try:
            _save_trial(path, trial)
        except OSError:
            pass  # a read-only cache folder only costs speed
    return trial


def _trial_label(spec: SweepSpec, n: int) -> str:
    i, j, s = spec.trials()[n]
    cell = i * spec.shape[1] + j
    seed = f" · seed {spec.seeds[s]}" if len(spec.seeds) > 1 else ""
    return f"cell {cell + 1}/{spec.shape[0] * spec.shape[1]}{seed}: {spec.cell_label(i, j)}"


def run_sweep(
    spec: SweepSpec,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    use_cache: bool = True,
    directory: Path | None = None,
) -> SweepResult:
    """Run (or load from the cache) every trial of ``spec``, one after another, in the calling thread.

    ``progress(fraction in [0, 1], message)`` is called as trials and steps finish; setting ``cancel``
    stops after the current step and returns the partial result (``cancelled=True``; the finished
    trials are cached). Seeded: the same spec gives the same numbers.
    """
    start = time.perf_counter()
    directory = cache_dir() if directory is None else Path(directory)
    trials = spec.trials()
    total_steps = len(trials) * spec.steps
    results: dict[tuple[int, int, int], TrialResult] = {}
    done_steps = 0
    cancelled = False

    def report(message: str, extra: int = 0) -> None:
        if progress is not None:
            progress(min(1.0, (done_steps + extra) / total_steps), message)

    every = max(1, spec.steps // 20)
    for n, key in enumerate(trials):
        label = _trial_label(spec, n)
        if cancel is not None and cancel.is_set():
            cancelled = True
            break

        def on_step(step: int, label=label) -> None:
            if step % every == 0 or step == spec.steps:
                report(label, step)

        trial = compute_trial(spec, *key, use_cache=use_cache, directory=directory, cancel=cancel, on_step=on_step)
        if trial is None:
            cancelled = True
            break
        results[key] = trial
        done_steps += spec.steps
        report(label + (" (cached)" if trial.from_cache else ""))
    return SweepResult(
        spec=spec,
        trials=results,
        reference=_reference_points(spec),
        cancelled=cancelled,
        seconds=time.perf_counter() - start,
    )


def _reference_points(spec: SweepSpec) -> np.ndarray:
    sampler = SAMPLERS[spec.base.data.dataset]
    return sampler(spec.particles, generator=stream(spec.seeds[0], "reference")).numpy()


# ---- sweeps in worker processes ------------------------------------------------------------------
_WORKER_CANCEL = None  # set in a worker process of SweepJob's own pool (see _worker_init)
_WORKER_PROGRESS = None


def _worker_init(cancel, progress, threads: int = TRIAL_TORCH_THREADS) -> None:
    """Initializer of a :class:`SweepJob` worker process: one torch thread (the worker must not fight
    the app server or the other workers for the cores), the job's cancel flag and progress counters
    (shared memory), and a watchdog that ends the worker if its parent goes away (a killed server
    leaves no orphan)."""
    global _WORKER_CANCEL, _WORKER_PROGRESS
    torch.set_num_threads(max(1, int(threads)))
    _WORKER_CANCEL, _WORKER_PROGRESS = cancel, progress
    parent = multiprocessing.parent_process()  # the process that made the pool (not the fork server)
    if parent is not None:

        def watch() -> None:
            parent.join()  # returns when the parent's end of the sentinel pipe closes: it has gone
            os._exit(0)

        threading.Thread(target=watch, name="drift-lab-sweep-watchdog", daemon=True).start()


def sweep_trial_task(
    spec: SweepSpec, n: int, use_cache: bool = True, directory: str | None = None
) -> TrialResult | None:
    """Trial number ``n`` (in ``spec.trials()`` order): the unit of work a :class:`SweepJob` submits to
    its executor. A plain picklable function of picklable arguments, so any ``concurrent.futures``-style
    executor can run it (a process pool here; a Dask distributed client for a cluster). In the job's
    own pool it also reports its steps and honours cancel between steps; elsewhere it simply runs."""
    cancel, progress = _WORKER_CANCEL, _WORKER_PROGRESS
    if cancel is not None and cancel.is_set():
        return None
    on_step = None
    if progress is not None:

        def on_step(step: int) -> None:
            progress[n] = step

    trial = compute_trial(
        spec,
        *spec.trials()[n],
        use_cache=use_cache,
        directory=None if directory is None else Path(directory),
        cancel=cancel,
        on_step=on_step,
    )
    if trial is not None and progress is not None:
        progress[n] = spec.steps
    return trial


def reference_task(spec: SweepSpec) -> np.ndarray:
    """The thumbnails' reference points of ``spec`` (submitted to the executor like the trials)."""
    return _reference_points(spec)


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While a worker process is being started: a bare ``__main__`` module, so the worker does not run
    the parent's main script again. (multiprocessing re-runs the parent's ``__main__`` file in every
    spawned or fork-server child; in the app that is the Streamlit page script that started the sweep,
    whose imports and widget calls would cost each worker seconds and log warnings. The trials need
    nothing from it: they are functions of this module.) Restored unless another thread replaced it
    meanwhile (Streamlit's script runner sets ``__main__`` for every script run)."""
    original = sys.modules.get("__main__")
    bare = types.ModuleType("__main__")
    sys.modules["__main__"] = bare
    try:
        yield
    finally:
        if sys.modules.get("__main__") is bare and original is not None:
            sys.modules["__main__"] = original


def _worker_context(name: str) -> multiprocessing.context.BaseContext:
    """The multiprocessing context ``name`` ("forkserver" or "spawn") whose processes start under
    :func:`_main_module_hidden`. (The process class is pickled to the new process, so it is defined at
    module level: :class:`_ForkServerWorker`, :class:`_SpawnWorker`.)"""
    base = multiprocessing.get_context(name)
    process = _ForkServerWorker if name == "forkserver" else _SpawnWorker
    return type(f"_{name.capitalize()}WorkerContext", (type(base),), {"Process": process})()


class _SpawnWorker(multiprocessing.context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj):
        with _main_module_hidden():
            return multiprocessing.context.SpawnProcess._Popen(process_obj)


if hasattr(multiprocessing.context, "ForkServerProcess"):  # POSIX

    class _ForkServerWorker(multiprocessing.context.ForkServerProcess):
        @staticmethod
        def _Popen(process_obj):
            with _main_module_hidden():
                return multiprocessing.context.ForkServerProcess._Popen(process_obj)


def _mp_context() -> multiprocessing.context.BaseContext:
    """ "forkserver" where there is one (POSIX), with this module and ``torch._dynamo`` preloaded: torch
    is imported once in the fork server and every worker starts from it in a fraction of a second
    (``torch._dynamo`` is what torch's optimizers import on their first use, seconds per fresh process);
    "spawn" elsewhere. Its processes start without the parent's ``__main__`` (:func:`_main_module_hidden`)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = _worker_context("forkserver")
        ctx.set_forkserver_preload([__name__, "torch._dynamo"])
        return ctx
    return _worker_context("spawn")


def prepare_workers() -> None:
    """Start the fork server (it imports torch in the background) so the first sweep's worker starts
    quickly. Cheap when it is already running; a no-op where there is no fork server."""
    ctx = _mp_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver  # the fork server's module exists on POSIX only

        forkserver.ensure_running()


_LIVE_JOBS: weakref.WeakSet[SweepJob] = weakref.WeakSet()


def _cancel_live_jobs() -> None:
    """At interpreter exit: cancel the running sweeps, so their worker processes stop at the next
    step instead of holding the exit until their trial is done."""
    for job in list(_LIVE_JOBS):
        job.cancel()


# threading's exit hooks run before concurrent.futures joins its workers (atexit runs after)
getattr(threading, "_register_atexit", atexit.register)(_cancel_live_jobs)


def _describe_error(err: BaseException) -> str:
    if isinstance(err, BrokenExecutor):
        return "the sweep's worker process stopped unexpectedly (out of memory?); finished trials are cached"
    if isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] == "drift_core":
        return "a worker cannot import drift_core: install Drift Lab where the workers run (pip install drift-lab)"
    return f"{type(err).__name__}: {err}"


@dataclass(eq=False)
class SweepJob:
    """A sweep whose trials run in worker processes: poll ``fraction``/``message``/``done``, read
    ``result`` or ``error`` when done, ``cancel()`` to stop early (the finished trials are kept).

    :meth:`start` first takes the trials already in the cache (in the calling thread: a file read
    each), then submits the others, one :func:`sweep_trial_task` each, to ``executor`` (any
    ``concurrent.futures.Executor``: e.g. a Dask ``distributed.Client(...).get_executor()``; the job
    does not shut it down) or, by default, to a process pool of its own with up to ``workers``
    processes ("forkserver"/"spawn", one torch thread each), which reports per-step progress through
    shared memory and stops a running trial at its next step on cancel. Polling the job reads a few
    numbers: no torch, no pickling. A small thread in the calling process waits on the futures (it does
    no work) and assembles the result. :meth:`run_here` runs the same sweep in the calling thread.
    """

    spec: SweepSpec
    use_cache: bool = True
    directory: Path | None = None
    executor: Executor | None = None
    workers: int = 1
    result: SweepResult | None = None
    error: str | None = None
    _fraction: float = 0.0
    _message: str = "starting"
    _cancel: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _futures: dict = field(default_factory=dict)  # future -> trial number
    _finished: list = field(default_factory=list)  # per trial: True once it has a result
    _progress: Any = None  # shared per-trial step counters, a multiprocessing RawArray (own pool only)
    _worker_cancel: Any = None  # a multiprocessing Event (own pool only)

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> SweepJob:
        started = time.perf_counter()
        trials = self.spec.trials()
        self._finished = [False] * len(trials)
        folder = cache_dir() if self.directory is None else Path(self.directory)
        done: dict[tuple[int, int, int], TrialResult] = {}
        if self.use_cache:
            for n, key in enumerate(trials):
                trial = _load_trial(_trial_path(self.spec, key, folder))
                if trial is not None:
                    done[key], self._finished[n] = trial, True
        pending = [n for n, finished in enumerate(self._finished) if not finished]
        executor, own = self.executor, self.executor is None and bool(pending)
        reference: Future | np.ndarray
        try:
            if own:
                ctx = _mp_context()
                self._worker_cancel = ctx.Event()
                self._progress = ctx.RawArray("q", len(trials))
                executor = ProcessPoolExecutor(
                    max_workers=max(1, min(int(self.workers), len(pending))),
                    mp_context=ctx,
                    initializer=_worker_init,
                    initargs=(self._worker_cancel, self._progress),
                )
            if executor is None:  # every trial came from the cache: nothing to run elsewhere
                reference = _reference_points(self.spec)
            else:
                reference = executor.submit(reference_task, self.spec)
                self._futures = {
                    executor.submit(sweep_trial_task, self.spec, n, self.use_cache, str(folder)): n for n in pending
                }
        except Exception as err:  # e.g. no processes allowed: a message, never a traceback
            self.error = _describe_error(err)
            if own and executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            return self
        _LIVE_JOBS.add(self)
        if self._cancel.is_set():
            self.cancel()
        self._thread = threading.Thread(
            target=self._collect,
            args=(executor if own else None, reference, done, started),
            name="drift-lab-sweep",
            daemon=True,
        )
        self._thread.start()
        return self

    def _collect(
        self,
        own_executor: Executor | None,
        reference: Future | np.ndarray,
        done: dict[tuple[int, int, int], TrialResult],
        started: float,
    ) -> None:
        trials = self.spec.trials()
        error = None
        try:
            for future in as_completed(self._futures):
                if future.cancelled():
                    continue
                err = future.exception()
                if err is not None:
                    if error is None:
                        error = _describe_error(err)
                        self.cancel()  # the rest would only be thrown away
                    continue
                trial = future.result()
                if trial is not None:
                    n = self._futures[future]
                    done[trials[n]] = trial
                    self._finished[n] = True
            if error is None:
                points = reference.result() if isinstance(reference, Future) else reference
                result = SweepResult(
                    spec=self.spec, trials=done, reference=points, seconds=time.perf_counter() - started
                )
                result.cancelled = self._cancel.is_set() and not result.complete
                self.result = result
            else:
                self.error = error
        except Exception as err:  # the reference failed, or the pool broke: a message
            self.error = _describe_error(err)
        finally:
            _LIVE_JOBS.discard(self)
            if own_executor is not None:
                own_executor.shutdown(wait=True, cancel_futures=True)

    def run_here(self) -> SweepJob:
        """Run in the calling thread (tests, or a server without worker processes)."""

        def progress(fraction: float, message: str) -> None:
            self._fraction, self._message = fraction, message

        try:
            self.result = run_sweep(
                self.spec, progress=progress, cancel=self._cancel, use_cache=self.use_cache, directory=self.directory
            )
        except Exception as err:  # surfaced to the user as a message, never lost silently
            self.error = f"{type(err).__name__}: {err}"
        return self

    def cancel(self) -> None:
        """Stop: queued trials are dropped, a running trial stops at its next step (own pool) or is let
        finish (another executor); the finished trials make a partial result."""
        self._cancel.set()
        if self._worker_cancel is not None:
            self._worker_cancel.set()
        for future in list(self._futures):
            future.cancel()

    # -- polling (cheap: a few numbers, no torch) ------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    @property
    def fraction(self) -> float:
        if not self._finished:  # run_here, or not started
            return self._fraction
        steps = self.spec.steps
        progress = self._progress
        total = sum(
            steps if finished else (progress[n] if progress is not None else 0)
            for n, finished in enumerate(self._finished)
        )
        return min(1.0, total / (steps * len(self._finished)))

    @property
    def message(self) -> str:
        if self.result is not None:
            return "cancelled" if self.result.cancelled else "done"
        if self.error is not None:
            return "failed"
        if not self._finished:
            return self._message
        progress = self._progress
        pending = [n for n, finished in enumerate(self._finished) if not finished]
        if not pending:
            return "finishing"
        running = [n for n in pending if progress is not None and progress[n] > 0]
        return _trial_label(self.spec, (running or pending)[0])

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sweep is done (or ``timeout`` seconds pass); True if done."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done
