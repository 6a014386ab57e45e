"""Hyperparameter sweeps: a small grid over two of K, tau, batch size and learning rate.

Every cell trains one seeded :class:`~drift_core.train.Trainer` (the same seed in every cell, so cells
differ only in the two swept settings) for ``steps`` steps and measures the final generated
distribution against a fixed held-out reference sample:

* ``energy``: energy distance (lower is better),
* ``w2``: exact W2 with POT (lower is better),
* ``modes``: modes covered (mixture datasets only; higher is better; NaN elsewhere),

and keeps ``particles`` final generated points for a thumbnail. All three metrics are stored, so the
heatmap can switch metric without re-running.

Results are cached per cell on disk (``DRIFT_CACHE_DIR``, default ``~/.cache/drift_lab/sweeps``) as
``.npz`` files read with ``allow_pickle=False``; the key is a SHA-256 of the cell's config JSON and the
evaluation settings, so a repeated (or overlapping, or cancelled-then-restarted) sweep is instant for
the cells already done (cache files are written atomically, so several processes can share the folder).
Nothing here prints or draws; :class:`SweepJob` runs a sweep's cells in a worker process (or any
``concurrent.futures`` executor) with progress and cancel for the app.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import math
import multiprocessing
import os
import threading
import time
import weakref
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .config import ConfigError, ExperimentConfig
from .limits import Limits
from .data.toy2d import MIXTURE_SIGMA, mixture_modes
from .metrics import energy_distance, mode_coverage, wasserstein2
from .run import EVAL_SAMPLES, Evaluator, Run
from .runtime import stream
from .train import Trainer

__all__ = [
    "AXES", "METRICS", "SweepSpec", "CellResult", "SweepResult", "run_sweep", "SweepJob", "cache_dir",
    "parse_axis_values", "CACHE_VERSION", "compute_cell", "sweep_cell_task", "prepare_workers",
]

AXES: dict[str, str] = {"K": "lookahead terms K", "tau": "temperature tau", "batch_size": "batch size N",
                        "lr": "learning rate"}
"""The settings a sweep can vary, with a readable name each."""

METRICS: dict[str, tuple[str, bool]] = {
    "energy": ("energy distance", True),
    "w2": ("W2 (exact)", True),
    "modes": ("modes covered", False),
}
"""metric key -> (readable name, lower is better)."""

CACHE_VERSION = 2
"""Bumped when what a cell computes changes, so old cache files are not reused."""

_AXIS_TYPES = {"K": int, "tau": float, "batch_size": int, "lr": float}
MAX_CELLS = 64


def cache_dir() -> Path:
    """Where cell results are cached: ``$DRIFT_CACHE_DIR`` or ``~/.cache/drift_lab/sweeps``."""
    env = os.environ.get("DRIFT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "drift_lab" / "sweeps"


def parse_axis_values(axis: str, text: str | Sequence) -> tuple:
    """Parse "0,1,2" (or a sequence) into typed, de-duplicated values of a sweep axis, in order."""
    if axis not in AXES:
        raise ConfigError(f"cannot sweep {axis!r}; choose two of {', '.join(AXES)}")
    items = [v for v in (text.split(",") if isinstance(text, str) else text)]
    kind = _AXIS_TYPES[axis]
    values = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            value = kind(float(item)) if kind is int and float(item).is_integer() else kind(item)
        except (TypeError, ValueError):
            raise ConfigError(f"{axis} values must be {'integers' if kind is int else 'numbers'}, got {item!r}") from None
        if value not in values:
            values.append(value)
    if not values:
        raise ConfigError(f"no values given for {axis}")
    return tuple(values)


def _axis_update(axis: str, value) -> dict:
    if axis == "K":
        # K = 0 is the baseline; any K > 0 means lookahead with K terms.
        return {"K": int(value), "method": "lookahead" if int(value) > 0 else "baseline"}
    return {axis: value}


@dataclass(frozen=True)
class SweepSpec:
    """A grid: ``y_values`` are rows, ``x_values`` columns; every cell is ``base`` with the two axes set
    and ``steps`` training steps.

    Args:
        base: the shared configuration (dataset, model, seed, the settings not swept).
        x_axis, y_axis: two different names from :data:`AXES`.
        steps: training steps per cell.
        eval_samples: generated and reference samples for the metrics.
        particles: final generated points kept per cell (thumbnails).
    """

    base: ExperimentConfig
    x_axis: str
    x_values: tuple
    y_axis: str
    y_values: tuple
    steps: int
    eval_samples: int = 1024
    particles: int = 256

    def __post_init__(self):
        if self.x_axis not in AXES or self.y_axis not in AXES:
            raise ConfigError(f"sweep axes must be two of {', '.join(AXES)}")
        if self.x_axis == self.y_axis:
            raise ConfigError("pick two different axes")
        object.__setattr__(self, "x_values", parse_axis_values(self.x_axis, self.x_values))
        object.__setattr__(self, "y_values", parse_axis_values(self.y_axis, self.y_values))
        if self.base.data.dataset == "custom":
            raise ConfigError("sweeps run on the built-in datasets (not an uploaded point set)")
        if not 1 <= self.steps <= 100_000:
            raise ConfigError("steps per cell must be between 1 and 100000")
        if self.eval_samples < 16 or self.particles < 1:
            raise ConfigError("eval_samples must be >= 16 and particles >= 1")
        if len(self.x_values) * len(self.y_values) > MAX_CELLS:
            raise ConfigError(f"at most {MAX_CELLS} cells per sweep, got {len(self.x_values)} x {len(self.y_values)}")
        limits = Limits.from_env()
        for i in range(len(self.y_values)):
            for j in range(len(self.x_values)):
                limits.check(self.cell_config(i, j))  # also validates every cell

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y_values), len(self.x_values)

    def cell_config(self, i: int, j: int) -> ExperimentConfig:
        """The configuration of row i (y_values[i]) and column j (x_values[j])."""
        values = {"steps": self.steps}
        values.update(_axis_update(self.y_axis, self.y_values[i]))
        values.update(_axis_update(self.x_axis, self.x_values[j]))
        return self.base.with_values(values)

    def cells(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.shape[0]) for j in range(self.shape[1])]

    def cell_key(self, i: int, j: int) -> str:
        """SHA-256 of everything a cell's result depends on (config JSON, evaluation settings)."""
        payload = {"version": CACHE_VERSION, "config": json.loads(self.cell_config(i, j).to_json()),
                   "eval_samples": self.eval_samples, "particles": self.particles}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def key(self) -> str:
        """SHA-256 of the whole sweep (the cell keys in grid order and the axes)."""
        payload = {"x": [self.x_axis, list(self.x_values)], "y": [self.y_axis, list(self.y_values)],
                   "cells": [self.cell_key(i, j) for i, j in self.cells()]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "x_axis": self.x_axis, "x_values": list(self.x_values),
                "y_axis": self.y_axis, "y_values": list(self.y_values), "steps": self.steps,
                "eval_samples": self.eval_samples, "particles": self.particles}


@dataclass(frozen=True)
class CellResult:
    """One cell: metrics {energy, w2, modes, high_quality}, final particles [P, 2], wall seconds of
    training, whether training diverged (then the metrics describe the last finite state)."""

    metrics: dict[str, float]
    particles: np.ndarray
    train_s: float
    diverged: bool
    steps_done: int
    from_cache: bool = False


@dataclass
class SweepResult:
    """A (possibly partial) sweep. ``cells[i][j]`` is a :class:`CellResult` or None (not run: cancelled)."""

    spec: SweepSpec
    cells: list[list[CellResult | None]]
    reference: np.ndarray  # [P, 2] reference points for the thumbnails
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return all(c is not None for row in self.cells for c in row)

    @property
    def cached_cells(self) -> int:
        return sum(1 for row in self.cells for c in row if c is not None and c.from_cache)

    def grid(self, metric: str) -> np.ndarray:
        """The metric over the grid [rows = y_values, cols = x_values]; NaN where not available."""
        if metric not in METRICS and metric != "high_quality":
            raise KeyError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        out = np.full(self.spec.shape, np.nan)
        for i, j in self.spec.cells():
            cell = self.cells[i][j]
            if cell is not None:
                out[i, j] = cell.metrics.get(metric, math.nan)
        return out

    def best_cell(self, metric: str) -> tuple[int, int] | None:
        values = self.grid(metric)
        if np.isnan(values).all():
            return None
        lower = METRICS.get(metric, ("", True))[1]
        flat = np.nanargmin(values) if lower else np.nanargmax(values)
        return tuple(int(v) for v in np.unravel_index(flat, values.shape))

    def rows(self) -> list[dict]:
        """One flat row per finished cell (for CSV)."""
        out = []
        for i, j in self.spec.cells():
            cell = self.cells[i][j]
            if cell is None:
                continue
            out.append({self.spec.y_axis: self.spec.y_values[i], self.spec.x_axis: self.spec.x_values[j],
                        "row": i, "col": j, **{k: cell.metrics.get(k, math.nan) for k in (*METRICS, "high_quality")},
                        "diverged": cell.diverged, "steps": cell.steps_done, "train_s": round(cell.train_s, 4),
                        "cached": cell.from_cache})
        return out


ProgressFn = Callable[[float, str], None]


def _cell_metrics(generated: torch.Tensor, reference: torch.Tensor, dataset: str) -> dict[str, float]:
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


def _load_cell(path: Path) -> CellResult | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return CellResult(metrics={k: float(v) for k, v in meta["metrics"].items()},
                              particles=np.array(data["particles"], dtype=np.float32),
                              train_s=float(meta["train_s"]), diverged=bool(meta["diverged"]),
                              steps_done=int(meta["steps_done"]), from_cache=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: recompute


def _save_cell(path: Path, cell: CellResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"metrics": cell.metrics, "train_s": cell.train_s, "diverged": cell.diverged, "steps_done": cell.steps_done}
    tmp = path.with_name(path.stem + f".{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez_compressed(tmp, particles=cell.particles, meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)  # atomic: a reader never sees a half-written file


def run_cell(config: ExperimentConfig, *, eval_samples: int, particles: int,
             cancel: "threading.Event | None" = None, on_step: Callable[[int], None] | None = None) -> CellResult | None:
    """Train one configuration for ``config.train.steps`` steps and measure it. Returns None if
    cancelled before the end. ``cancel`` is anything with ``is_set()`` (a threading or multiprocessing
    Event)."""
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
    metrics = _cell_metrics(generated, evaluator.reference, config.data.dataset)
    return CellResult(metrics=metrics, particles=generated[:particles].numpy().astype(np.float32),
                      train_s=trainer.wall_s, diverged=diverged, steps_done=trainer.step_count)


def compute_cell(spec: SweepSpec, i: int, j: int, *, use_cache: bool = True, directory: Path | None = None,
                 cancel=None, on_step: Callable[[int], None] | None = None) -> CellResult | None:
    """Cell (i, j) of ``spec``: from the cache when it is there, else trained (and then cached).
    Returns None if cancelled first. Both :func:`run_sweep` and the worker processes of
    :class:`SweepJob` compute cells with this one function, so they give the same numbers."""
    directory = cache_dir() if directory is None else Path(directory)
    path = directory / f"{spec.cell_key(i, j)}.npz"
    cell = _load_cell(path) if use_cache and path.is_file() else None
    if cell is not None:
        return cell
    cell = run_cell(spec.cell_config(i, j), eval_samples=spec.eval_samples, particles=spec.particles,
                    cancel=cancel, on_step=on_step)
    if cell is not None and use_cache:
        try:
            _save_cell(path, cell)
        except OSError:
            pass  # a read-only cache folder only costs speed
    return cell


def _cell_label(spec: SweepSpec, n: int) -> str:
    i, j = spec.cells()[n]
    return f"cell {n + 1}/{spec.shape[0] * spec.shape[1]}: {spec.y_axis}={spec.y_values[i]}, {spec.x_axis}={spec.x_values[j]}"


def run_sweep(spec: SweepSpec, *, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
              use_cache: bool = True, directory: Path | None = None) -> SweepResult:
    """Run (or load from the cache) every cell of ``spec``, row by row, in the calling thread.

    ``progress(fraction in [0, 1], message)`` is called as cells and steps finish; setting ``cancel``
    stops after the current step and returns the partial result (``cancelled=True``; the finished
    cells are cached). Seeded: the same spec gives the same numbers.
    """
    start = time.perf_counter()
    directory = cache_dir() if directory is None else Path(directory)
    rows, cols = spec.shape
    total_steps = rows * cols * spec.steps
    cells: list[list[CellResult | None]] = [[None] * cols for _ in range(rows)]
    done_steps = 0
    cancelled = False

    def report(message: str, extra: int = 0) -> None:
        if progress is not None:
            progress(min(1.0, (done_steps + extra) / total_steps), message)

    every = max(1, spec.steps // 20)
    for n, (i, j) in enumerate(spec.cells()):
        label = _cell_label(spec, n)
        if cancel is not None and cancel.is_set():
            cancelled = True
            break

        def on_step(step: int, label=label) -> None:
            if step % every == 0 or step == spec.steps:
                report(label, step)

        cell = compute_cell(spec, i, j, use_cache=use_cache, directory=directory, cancel=cancel, on_step=on_step)
        if cell is None:
            cancelled = True
            break
        cells[i][j] = cell
        done_steps += spec.steps
        report(label + (" (cached)" if cell.from_cache else ""))
    return SweepResult(spec=spec, cells=cells, reference=_reference_points(spec), cancelled=cancelled,
                       seconds=time.perf_counter() - start)


def _reference_points(spec: SweepSpec) -> np.ndarray:
    from .data.toy2d import SAMPLERS

    sampler = SAMPLERS[spec.base.data.dataset]
    return sampler(spec.particles, generator=stream(spec.base.train.seed, "reference")).numpy()


# ---- sweeps in worker processes ------------------------------------------------------------------
_WORKER_CANCEL = None  # set in a worker process of SweepJob's own pool (see _worker_init)
_WORKER_PROGRESS = None


def _worker_init(cancel, progress, threads: int = 1) -> None:
    """Initializer of a :class:`SweepJob` worker process: one torch thread (the worker must not fight
    the app server for the cores), the job's cancel flag and progress counters (shared memory), and a
    watchdog that ends the worker if its parent goes away (a killed server leaves no orphan)."""
    global _WORKER_CANCEL, _WORKER_PROGRESS
    torch.set_num_threads(max(1, int(threads)))
    _WORKER_CANCEL, _WORKER_PROGRESS = cancel, progress
    parent = multiprocessing.parent_process()  # the process that made the pool (not the fork server)
    if parent is not None:
        def watch() -> None:
            parent.join()  # returns when the parent's end of the sentinel pipe closes: it has gone
            os._exit(0)

        threading.Thread(target=watch, name="drift-lab-sweep-watchdog", daemon=True).start()


def sweep_cell_task(spec: SweepSpec, n: int, use_cache: bool = True, directory: str | None = None) -> CellResult | None:
    """Cell number ``n`` (grid order) of ``spec``: the unit of work a :class:`SweepJob` submits to its
    executor. A plain picklable function of picklable arguments, so any ``concurrent.futures``-style
    executor can run it (a process pool here; a Dask distributed client for a cluster). In the job's
    own pool it also reports its steps and honours cancel between steps; elsewhere it simply runs."""
    cancel, progress = _WORKER_CANCEL, _WORKER_PROGRESS
    if cancel is not None and cancel.is_set():
        return None
    i, j = spec.cells()[n]
    on_step = None
    if progress is not None:
        def on_step(step: int) -> None:
            progress[n] = step
    cell = compute_cell(spec, i, j, use_cache=use_cache, directory=None if directory is None else Path(directory),
                        cancel=cancel, on_step=on_step)
    if cell is not None and progress is not None:
        progress[n] = spec.steps
    return cell


def reference_task(spec: SweepSpec) -> np.ndarray:
    """The thumbnails' reference points of ``spec`` (submitted to the executor like the cells)."""
    return _reference_points(spec)


def _mp_context():
    """"forkserver" where there is one (POSIX), with this module preloaded: torch is imported once in
    the fork server and every worker starts from it in a fraction of a second; "spawn" elsewhere."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def prepare_workers() -> None:
    """Start the fork server (it imports torch in the background) so the first sweep's worker starts
    quickly. Cheap when it is already running; a no-op where there is no fork server."""
    ctx = _mp_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


_LIVE_JOBS: "weakref.WeakSet[SweepJob]" = weakref.WeakSet()


def _cancel_live_jobs() -> None:
    """At interpreter exit: cancel the running sweeps, so their worker processes stop at the next
    step instead of holding the exit until their cell is done."""
    for job in list(_LIVE_JOBS):
        job.cancel()


# threading's exit hooks run before concurrent.futures joins its workers (atexit runs after)
getattr(threading, "_register_atexit", atexit.register)(_cancel_live_jobs)


def _describe_error(err: BaseException) -> str:
    if isinstance(err, BrokenExecutor):
        return "the sweep's worker process stopped unexpectedly (out of memory?); finished cells are cached"
    return f"{type(err).__name__}: {err}"


@dataclass(eq=False)
class SweepJob:
    """A sweep whose cells run in a worker process: poll ``fraction``/``message``/``done``, read
    ``result`` or ``error`` when done, ``cancel()`` to stop early (the finished cells are kept).

    :meth:`start` submits the cells, one :func:`sweep_cell_task` each, to ``executor`` (any
    ``concurrent.futures.Executor``: e.g. a Dask ``distributed.Client(...).get_executor()``; the job
    does not shut it down) or, by default, to a process pool of its own with ``workers`` processes
    ("forkserver"/"spawn", one torch thread each), which reports per-step progress through shared
    memory and stops a running cell at its next step on cancel. Polling the job reads a few numbers:
    no torch, no pickling. A small thread in the calling process waits on the futures (it does no work)
    and assembles the result. :meth:`run_here` runs the same sweep in the calling thread instead.
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
    _futures: list = field(default_factory=list)
    _finished: list = field(default_factory=list)  # per cell: True once its future has a result
    _progress: object = None  # shared per-cell step counters (own pool only)
    _worker_cancel: object = None  # multiprocessing Event (own pool only)

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> "SweepJob":
        cells = len(self.spec.cells())
        self._finished = [False] * cells
        directory = str(cache_dir() if self.directory is None else Path(self.directory))
        executor, own = self.executor, self.executor is None
        started = time.perf_counter()
        try:
            if own:
                ctx = _mp_context()
                self._worker_cancel = ctx.Event()
                self._progress = ctx.RawArray("q", cells)
                executor = ProcessPoolExecutor(max_workers=max(1, int(self.workers)), mp_context=ctx,
                                               initializer=_worker_init, initargs=(self._worker_cancel, self._progress))
            reference = executor.submit(reference_task, self.spec)
            self._futures = [executor.submit(sweep_cell_task, self.spec, n, self.use_cache, directory)
                             for n in range(cells)]
        except Exception as err:  # e.g. no processes allowed: a message, never a traceback
            self.error = _describe_error(err)
            if own and executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            return self
        _LIVE_JOBS.add(self)
        if self._cancel.is_set():
            self.cancel()
        self._thread = threading.Thread(target=self._collect, args=(executor if own else None, reference, started),
                                        name="drift-lab-sweep", daemon=True)
        self._thread.start()
        return self

    def _collect(self, own_executor: Executor | None, reference: Future, started: float) -> None:
        rows, cols = self.spec.shape
        cells: list[list[CellResult | None]] = [[None] * cols for _ in range(rows)]
        grid = self.spec.cells()
        index = {id(f): n for n, f in enumerate(self._futures)}
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
                cell = future.result()
                if cell is not None:
                    n = index[id(future)]
                    i, j = grid[n]
                    cells[i][j] = cell
                    self._finished[n] = True
            if error is None:
                points = reference.result()
                result = SweepResult(spec=self.spec, cells=cells, reference=points,
                                     seconds=time.perf_counter() - started)
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

    def run_here(self) -> "SweepJob":
        """Run in the calling thread (tests, or a server without worker processes)."""
        def progress(fraction: float, message: str) -> None:
            self._fraction, self._message = fraction, message

        try:
            self.result = run_sweep(self.spec, progress=progress, cancel=self._cancel,
                                    use_cache=self.use_cache, directory=self.directory)
        except Exception as err:  # surfaced to the user as a message, never lost silently
            self.error = f"{type(err).__name__}: {err}"
        return self

    def cancel(self) -> None:
        """Stop: queued cells are dropped, a running cell stops at its next step (own pool) or is let
        finish (another executor); the finished cells make a partial result."""
        self._cancel.set()
        if self._worker_cancel is not None:
            self._worker_cancel.set()
        for future in self._futures:
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
        total = sum(steps if finished else (progress[n] if progress is not None else 0)
                    for n, finished in enumerate(self._finished))
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
        return _cell_label(self.spec, (running or pending)[0])

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sweep is done (or ``timeout`` seconds pass); True if done."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done
