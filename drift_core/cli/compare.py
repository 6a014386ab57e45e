"""``python -m drift_core compare``: baseline vs lookahead (and a baseline with doubled learning rate,
the fairness control) over several seeds, each seed trained in lock-step on shared batches. Prints a
mean +- std table at fixed steps and at fixed wall-clock times, and writes the raw rows as CSV.
``--particles`` compares particle-mode arms (the field without the network), whose fairness control is
the baseline with a doubled particle step: is lookahead only a larger step?"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from ..config import ConfigError, ExperimentConfig
from ..export import write_csv
from ..run import EVAL_SAMPLES, Evaluator, Run
from . import UsageError
from .common import (
    add_command,
    add_config_arguments,
    add_particles_argument,
    config_from_args,
    float_list,
    int_in,
    int_list,
    points_from_args,
)
from .train2d import MAX_EVAL_SAMPLES


def add_parser(sub) -> None:
    p = add_command(sub, "compare", help="baseline vs lookahead over seeds", description=__doc__)
    add_config_arguments(p)
    add_particles_argument(p, "compare")
    p.add_argument("--lookahead-K", type=int_list, default=[1, 2], help="comma-separated K values for lookahead runs")
    p.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="comma-separated seeds")
    p.add_argument(
        "--eval-at",
        type=int_list,
        default=None,
        help="comma-separated steps to evaluate at (default: 4 points up to --steps)",
    )
    p.add_argument(
        "--wall-times",
        type=float_list,
        default=None,
        help="comma-separated wall-clock seconds to report at (default: derived)",
    )
    p.add_argument(
        "--no-doubled-lr",
        action="store_true",
        help="skip the fairness control: the baseline with 2x learning rate (with --particles, 2x particle step)",
    )
    p.add_argument("--exact-w2", action="store_true", help="report exact W2 (POT) too")
    p.add_argument(
        "--eval-samples",
        type=int_in(2, MAX_EVAL_SAMPLES),
        default=EVAL_SAMPLES,
        help="samples per evaluation (as in the app)",
    )
    p.add_argument("--out", type=Path, default=None, help="CSV file for the raw per-seed rows")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=run)


def methods_for(base: ExperimentConfig, ks: list[int], doubled_lr: bool) -> dict[str, ExperimentConfig]:
    """The arms: baseline, the fairness control (2x learning rate; in particle mode 2x particle step)
    unless ``doubled_lr`` is False, and lookahead for each K."""
    methods = {"baseline": replace(base, drift=replace(base.drift, K=0))}
    if doubled_lr and base.train.mode == "particles":
        methods["baseline 2x step"] = base.with_values(
            {"method": "baseline", "particle_step": base.train.particle_step * 2}
        )
    elif doubled_lr:
        methods["baseline 2x lr"] = base.with_values({"method": "baseline", "lr": base.train.lr * 2})
    for k in ks:
        methods[f"lookahead K={k}"] = base.with_values({"method": "lookahead", "K": k})
    return methods


def run(args: argparse.Namespace) -> int:
    base = config_from_args(args)
    points = points_from_args(args, base)
    ks = args.lookahead_K
    if any(k < 1 for k in ks):
        raise UsageError("--lookahead-K values must be >= 1 (K = 0 is the baseline, always included)")
    seeds = list(dict.fromkeys(args.seeds))
    steps = base.train.steps
    if steps < 1:
        raise UsageError("--steps must be >= 1")
    if base.train.mode == "particles" and args.eval_samples != EVAL_SAMPLES:
        raise UsageError(
            f"particle mode evaluates its {EVAL_SAMPLES} particles: --eval-samples cannot change that in compare"
        )
    eval_at = sorted(s for s in set(args.eval_at or {max(1, steps * i // 4) for i in range(1, 5)}) if 1 <= s <= steps)
    if not eval_at:
        raise UsageError(f"--eval-at names no step from 1 to --steps {steps}")
    try:
        methods = methods_for(base, ks, not args.no_doubled_lr)
        for seed in seeds:  # every seed is checked before any training
            base.with_values({"seed": seed})
    except ConfigError as err:
        raise UsageError(str(err)) from None
    rows = []
    bar = tqdm(total=len(seeds) * steps, disable=args.quiet, desc="compare", unit="step")
    for seed in seeds:
        run = Run.lockstep_arms(
            {name: cfg.with_values({"seed": seed}) for name, cfg in methods.items()},
            base.with_values({"seed": seed}),
            points=points,
        )
        evaluator = (
            run.evaluator
            if args.eval_samples == EVAL_SAMPLES
            else Evaluator.for_trainer(run.trainer, args.eval_samples)
        )
        for step in range(1, steps + 1):
            records = run.lockstep.step()  # a diverged arm keeps its last finite state; the others train on
            bar.update(1)
            if step in eval_at:
                for name, trainer in run.trainers.items():
                    m = evaluator(trainer, exact_w2=args.exact_w2) or {
                        "energy": float("nan"),
                        "sliced_w2": float("nan"),
                    }
                    rows.append(
                        {
                            "method": name,
                            "seed": seed,
                            "step": step,
                            "wall_s": trainer.wall_s,
                            "diverged": records[name].diverged,
                            **m,
                        }
                    )
    bar.close()
    metric_names = ["energy"] + (["w2"] if args.exact_w2 else []) + ["sliced_w2"]
    print(f"\n{base.data.dataset}: mean +- std over seeds {seeds}, N={base.train.batch_size}, tau={base.drift.tau}")
    print(_table(rows, methods, metric_names, "step", eval_at))
    wall = _wall_times(rows, args.wall_times)
    if wall:
        print("\nAt fixed wall-clock time (last evaluation at or before t):")
        print(_wall_table(rows, methods, metric_names, wall, seeds))
    if args.out:
        try:
            write_csv(args.out, rows, empty_header="method")
        except OSError as err:
            raise UsageError(f"cannot write {args.out}: {err.strerror or err}") from None
    return 0


def _fmt(values: list[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4g} +- {std:.2g}"


def _table(rows, methods, metric_names, key, points) -> str:
    header = ["method"] + [f"{m} @{key} {p}" for p in points for m in metric_names]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for name in methods:
        cells = [name]
        for p in points:
            for m in metric_names:
                cells.append(_fmt([r.get(m) for r in rows if r["method"] == name and r[key] == p]))
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def _wall_times(rows, given: list[float] | None):
    if given:
        return given
    baseline_final = [
        r["wall_s"] for r in rows if r["method"] == "baseline" and r["step"] == max(x["step"] for x in rows)
    ]
    if not baseline_final:
        return []
    t = statistics.fmean(baseline_final)
    return [round(t / 2, 2), round(t, 2)]


def _wall_table(rows, methods, metric_names, times, seeds) -> str:
    header = ["method"] + [f"{m} @{t:g}s" for t in times for m in metric_names]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for name in methods:
        cells = [name]
        for t in times:
            for m in metric_names:
                values = []
                for seed in seeds:
                    ok = [r for r in rows if r["method"] == name and r["seed"] == seed and r["wall_s"] <= t]
                    if ok:
                        values.append(max(ok, key=lambda r: r["wall_s"]).get(m))
                cells.append(_fmt(values))
        lines.append(" | ".join(cells))
    return "\n".join(lines)
