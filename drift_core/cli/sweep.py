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
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw
from tqdm import tqdm

from .. import palette
from ..bounds import square_bounds
from ..config import ConfigError
from ..export import write_csv
from ..files import atomic_write, write_text
from ..render import heatmap_image, image_grid, scatter_image, text_font
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


# ---- outputs -------------------------------------------------------------------------------------
def _with_text(picture: Image.Image, text: str, *, above: bool = False, size: int = 16) -> Image.Image:
    """``picture`` with ``text`` (wrapped to its width, ``size`` pixels) in a white band below it (or
    above), so the words never cover the picture."""
    font = text_font(size)
    measure = ImageDraw.Draw(picture)
    char_px = max(1.0, measure.textlength("abcdefghijklmnopqrstuvwxyz", font=font) / 26)
    lines = textwrap.wrap(text, width=max(8, int((picture.width - 8) / char_px))) if text else []
    band = 6 + (size + 4) * len(lines)
    out = Image.new("RGB", (picture.width, picture.height + band), "white")
    out.paste(picture, (0, band if above else 0))
    draw = ImageDraw.Draw(out)
    top = 3 if above else picture.height + 3
    for k, line in enumerate(lines):
        draw.text((4, top + k * (size + 4)), line, fill=(0, 0, 0), font=font)
    return out


def heatmap_for(result: SweepResult, metric: str) -> Image.Image:
    """The metric's mean over the seeds per cell and, with several seeds, beside it the spread (std),
    with the verdict (is the best cell separated from the rest by more than the spread?) below."""
    spec = result.spec
    name, lower = METRICS[metric]
    xs, ys = [f"{v:g}" for v in spec.x_values], [f"{v:g}" for v in spec.y_values]
    x_name, y_name = AXES[spec.x_axis], AXES[spec.y_axis]
    several = len(spec.seeds) > 1
    panels: list[Image.Image | None] = [
        heatmap_image(
            result.mean(metric),
            xs,
            ys,
            lower_is_better=lower,
            x_name=x_name,
            y_name=y_name,
            title=f"{name}, {'mean' if several else 'one seed'}",
        )
    ]
    if several:
        panels.append(
            heatmap_image(
                result.std(metric),
                xs,
                ys,
                lower_is_better=True,
                x_name=x_name,
                y_name=y_name,
                title=f"spread: std over {len(spec.seeds)} seeds",
            )
        )
    seeds = ", ".join(str(s) for s in spec.seeds)
    about = (
        f"{spec.base.data.dataset}, {spec.steps} steps per trial, seed{'s' if several else ''} {seeds}; "
        f"{'lower' if lower else 'higher'} is better. "
    )
    return _with_text(image_grid([panels]), about + result.verdict(metric))


def thumbnail_bounds(result: SweepResult) -> tuple[float, float, float, float]:
    """One frame shared by every cell (the reference data with a margin), so thumbnails compare."""
    return square_bounds([result.reference], margin=0.15)


def cell_thumbnail(result: SweepResult, i: int, j: int, size: int = 160, *, label: bool = True) -> Image.Image | None:
    """Final particles (blue) of cell (i, j)'s first finished seed over the data (grey), in the app's
    palette, with the cell's settings in a band above the picture (``label``); None if no seed of the
    cell finished."""
    trials = result.cell_trials(i, j)
    if not trials:
        return None
    picture = scatter_image(
        [(result.reference, palette.DATA.colour), (trials[0].particles, palette.GENERATED.colour)],
        size=size,
        bounds=thumbnail_bounds(result),
        radius=1.2,
        axes=False,
    )
    return _with_text(picture, result.spec.cell_label(i, j), above=True, size=14) if label else picture


def thumbnails_for(result: SweepResult, size: int = 160) -> Image.Image:
    spec = result.spec
    return image_grid(
        [[cell_thumbnail(result, i, j, size) for j in range(spec.shape[1])] for i in range(spec.shape[0])]
    )


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
