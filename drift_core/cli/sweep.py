"""``python -m drift_core sweep``: a small grid over two of K, tau, batch size and learning rate.

Every cell trains the base configuration (``--preset``/``--config``/overrides, the same seed in every
cell) for ``--steps`` steps. Writes into ``--out``: ``sweep.csv`` (one row per cell, all metrics),
``heatmap.png`` (the chosen ``--metric``), ``thumbnails.png`` (final particles per cell over the data)
and ``sweep.json`` (the spec). Cells are cached (``DRIFT_CACHE_DIR``), so repeating a sweep is instant.

Example: python -m drift_core sweep --dataset 8gaussians --x-axis K --x-values 0,1,2 \\
         --y-axis tau --y-values 0.02,0.05 --steps 300 --metric energy --out runs/sweep
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from tqdm import tqdm

from ..config import ConfigError
from ..render import heatmap_image, image_grid, scatter_image
from ..sweep import AXES, METRICS, SweepSpec, parse_axis_values, run_sweep
from . import UsageError
from .common import add_config_arguments, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="grid over two hyperparameters; CSV + heatmap PNG",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    p.add_argument("--x-axis", required=True, choices=tuple(AXES), help="setting along the columns")
    p.add_argument("--x-values", required=True, help="comma-separated values, e.g. 0,1,2")
    p.add_argument("--y-axis", required=True, choices=tuple(AXES), help="setting along the rows")
    p.add_argument("--y-values", required=True, help="comma-separated values, e.g. 0.02,0.05")
    p.add_argument("--metric", default="energy", choices=tuple(METRICS), help="metric drawn in heatmap.png")
    p.add_argument("--eval-samples", type=int, default=1024, help="samples per metric evaluation")
    p.add_argument("--particles", type=int, default=256, help="final particles per thumbnail")
    p.add_argument("--no-cache", action="store_true", help="recompute every cell (and do not write the cache)")
    p.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def write_csv(result, path: Path) -> None:
    rows = result.rows()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["row", "col"])
        writer.writeheader()
        writer.writerows(rows)


def heatmap_for(result, metric: str):
    spec = result.spec
    name, lower = METRICS[metric]
    return heatmap_image(result.grid(metric), [f"{v:g}" for v in spec.x_values], [f"{v:g}" for v in spec.y_values],
                         x_name=AXES[spec.x_axis], y_name=AXES[spec.y_axis], lower_is_better=lower,
                         title=f"{spec.base.data.dataset}: {name} after {spec.steps} steps "
                               f"({'lower' if lower else 'higher'} is better)")


def thumbnail_bounds(result) -> tuple[float, float, float, float]:
    """One frame shared by every cell (the reference data with a margin), so thumbnails compare."""
    ref = result.reference
    lo, hi = ref.min(0), ref.max(0)
    half = float((hi - lo).max()) * 0.65
    mid = (lo + hi) / 2
    return (mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half)


def cell_thumbnail(result, i: int, j: int, size: int = 160):
    """Final particles of cell (i, j) over the data (grey), or None if the cell did not run."""
    spec = result.spec
    cell = result.cells[i][j]
    if cell is None:
        return None
    title = f"{spec.y_axis}={spec.y_values[i]:g} {spec.x_axis}={spec.x_values[j]:g}"
    return scatter_image([(result.reference, (200, 200, 200)), (cell.particles, (31, 119, 180))], size=size,
                         bounds=thumbnail_bounds(result), title=title, radius=1.2)


def thumbnails_for(result, size: int = 160):
    spec = result.spec
    return image_grid([[cell_thumbnail(result, i, j, size) for j in range(spec.shape[1])] for i in range(spec.shape[0])])


def run(args: argparse.Namespace) -> int:
    base = config_from_args(args)
    try:
        spec = SweepSpec(base, args.x_axis, parse_axis_values(args.x_axis, args.x_values), args.y_axis,
                         parse_axis_values(args.y_axis, args.y_values), steps=base.train.steps,
                         eval_samples=args.eval_samples, particles=args.particles)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    bar = tqdm(total=1000, disable=args.quiet, desc="sweep", unit="‰", bar_format="{l_bar}{bar}| {postfix}")

    def progress(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message)

    result = run_sweep(spec, progress=progress, use_cache=not args.no_cache)
    bar.close()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_csv(result, out / "sweep.csv")
    heatmap_for(result, args.metric).save(out / "heatmap.png")
    thumbnails_for(result).save(out / "thumbnails.png")
    (out / "sweep.json").write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True))
    if not args.quiet:
        best = result.best_cell(args.metric)
        line = {"cells": spec.shape[0] * spec.shape[1], "cached": result.cached_cells, "seconds": round(result.seconds, 2)}
        if best is not None:
            line["best"] = {spec.y_axis: spec.y_values[best[0]], spec.x_axis: spec.x_values[best[1]],
                            args.metric: float(result.grid(args.metric)[best])}
        print(json.dumps(line))
    return 0
