"""``drift-lab sweep``: a small grid over two of K, tau, batch size and learning rate.

Every cell trains the base configuration (``--preset``/``--config``/overrides) for ``--steps`` steps,
once per seed of ``--seeds`` (default: the configuration's seed). The trials run in parallel: on
``--workers`` local processes (default: every core this process may use), or on a Dask distributed
cluster (``--cluster ADDRESS``, the scheduler's address, e.g. tcp://10.0.0.5:8786). The numbers are the
same whatever runs them. Writes into ``--out``: ``sweep.csv`` (one row per cell: each metric's mean and
std over the seeds), ``trials.csv`` (one row per cell and seed), ``heatmap.png`` (the chosen
``--metric``: the mean and, with several seeds, the spread), ``thumbnails.png`` (final particles per
cell over the data) and ``sweep.json`` (the spec). Trials are cached (``DRIFT_CACHE_DIR``), so
repeating or extending a sweep is instant.

Example: drift-lab sweep --dataset 8gaussians --x-axis K --x-values 0,1,2 \\
         --y-axis tau --y-values 0.02,0.05 --steps 300 --seeds 0,1,2 --metric energy --out runs/sweep
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tqdm import tqdm

from ..config import ConfigError
from ..export import write_csv
from ..files import atomic_write, write_text
from ..sweep import (
    AXES,
    METRICS,
    SweepJob,
    SweepResult,
    SweepSpec,
    default_workers,
    parse_axis_values,
    parse_seeds,
    run_sweep,
)
from ..sweep_pictures import heatmap_for, thumbnails_for
from . import UsageError
from .common import add_config_arguments, config_from_args


def _seeds_argument(text: str) -> tuple[int, ...]:
    try:
        return parse_seeds(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="grid over two hyperparameters (and seeds), in parallel; CSV + heatmap PNG",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(p)
    p.add_argument("--x-axis", required=True, choices=tuple(AXES), help="setting along the columns")
    p.add_argument("--x-values", required=True, help="comma-separated values, e.g. 0,1,2")
    p.add_argument("--y-axis", required=True, choices=tuple(AXES), help="setting along the rows")
    p.add_argument("--y-values", required=True, help="comma-separated values, e.g. 0.02,0.05")
    p.add_argument(
        "--seeds",
        type=_seeds_argument,
        default=None,
        metavar="0,1,2",
        help="train every cell with each of these seeds and report mean and std (default: the config's seed)",
    )
    p.add_argument("--metric", default="energy", choices=tuple(METRICS), help="metric drawn in heatmap.png")
    p.add_argument("--eval-samples", type=int, default=1024, help="samples per metric evaluation")
    p.add_argument("--particles", type=int, default=256, help="final particles per thumbnail")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="local worker processes, one torch thread each (default: the usable cores; 1 = in this process)",
    )
    where.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the trials on this Dask distributed scheduler (needs the 'cluster' extra)",
    )
    p.add_argument("--no-cache", action="store_true", help="recompute every trial (and do not write the cache)")
    p.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


# ---- running -------------------------------------------------------------------------------------
def connect(address: str):
    """A Dask distributed client of the scheduler at ``address``; a UsageError when Dask distributed
    is not installed or the scheduler cannot be reached."""
    try:
        # an optional dependency (the 'cluster' extra): imported only when a cluster is asked for
        from distributed import Client
    except ImportError:
        raise UsageError("--cluster needs Dask distributed: pip install 'drift-lab[cluster]'") from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as err:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {err}") from None


def execute(spec: SweepSpec, *, workers: int, client=None, use_cache: bool = True, progress=None) -> SweepResult:
    """Run ``spec``: in this process (``workers`` = 1, no client), on a pool of ``workers`` local
    processes, or on ``client``'s Dask cluster. Ctrl-C cancels (the finished trials stay cached) and
    re-raises. A failed sweep is a RuntimeError with the reason."""
    if client is None and workers == 1:
        return run_sweep(spec, progress=progress, use_cache=use_cache)
    executor = client.get_executor(pure=False) if client is not None else None
    job = SweepJob(spec, use_cache=use_cache, executor=executor, workers=workers).start()
    try:
        while not job.wait(timeout=0.2):
            if progress is not None:
                progress(job.fraction, job.message)
    except KeyboardInterrupt:
        job.cancel()
        job.wait(timeout=60)
        raise
    if job.error is not None or job.result is None:
        raise RuntimeError(job.error or "the sweep ended without a result")
    return job.result


def _json_number(value) -> float | None:
    return float(value) if math.isfinite(value) else None  # JSON has no NaN


def run(args: argparse.Namespace) -> int:
    base = config_from_args(args)
    try:
        spec = SweepSpec(
            base,
            args.x_axis,
            parse_axis_values(args.x_axis, args.x_values),
            args.y_axis,
            parse_axis_values(args.y_axis, args.y_values),
            steps=base.train.steps,
            eval_samples=args.eval_samples,
            particles=args.particles,
            seeds=args.seeds or (),
        )
    except ConfigError as err:
        raise UsageError(str(err)) from None
    client = connect(args.cluster) if args.cluster else None
    workers = args.workers or default_workers()
    bar = tqdm(total=1000, disable=args.quiet, desc="sweep", unit="‰", bar_format="{l_bar}{bar}| {postfix}")

    def progress(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message)

    try:
        result = execute(spec, workers=workers, client=client, use_cache=not args.no_cache, progress=progress)
    except RuntimeError as err:
        print(f"error: the sweep failed: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        bar.close()
        if client is not None:
            client.close()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "sweep.csv", result.rows(), empty_header="row")
    write_csv(out / "trials.csv", result.trial_rows(), empty_header="row")
    for name, picture in (
        ("heatmap.png", heatmap_for(result, args.metric)),
        ("thumbnails.png", thumbnails_for(result)),
    ):
        with atomic_write(out / name) as fh:
            picture.save(fh, format="PNG")
    write_text(out / "sweep.json", json.dumps(spec.to_dict(), indent=2, sort_keys=True))
    if not args.quiet:
        print(result.verdict(args.metric))
        line = {
            "cells": spec.shape[0] * spec.shape[1],
            "seeds": len(spec.seeds),
            "trials": len(spec.trials()),
            "cached": result.cached_trials,
            "workers": "cluster" if client is not None else workers,
            "seconds": round(result.seconds, 2),
        }
        best = result.best_cell(args.metric)
        if best is not None:
            line["best"] = {
                spec.y_axis: spec.y_values[best[0]],
                spec.x_axis: spec.x_values[best[1]],
                f"{args.metric}_mean": _json_number(result.mean(args.metric)[best]),
                f"{args.metric}_std": _json_number(result.std(args.metric)[best]),
                "not_separated_from": len(result.not_separated_from_best(args.metric)),
            }
        print(json.dumps(line))
    return 0
