"""Sweep cache and estimator-noise measurements (one command, two tables).

    python -m benchmarks.sweep_cache [--steps 150] [--threads 1]

1. A 3 x 3 sweep (K in {0, 1, 2} x tau in {0.02, 0.05, 0.2}, 8gaussians, the playground network at
   N = 256) run cold (empty cache folder) and then again (every cell from the cache), side by side:
   wall time of each and the ratio, and whether the numbers are identical.
2. The estimator-noise spread of V (median over 48 particles, 8 resamples) at N = 8 ... 2048 for the
   same trained model, with the ratio to the N = 8 spread and 1 / sqrt(N / 8) for reference.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time

import numpy as np
import torch

from drift_core.config import ExperimentConfig
from drift_core.estimator_noise import estimator_noise
from drift_core.sweep import SweepSpec, run_sweep
from drift_core.train import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} thread(s)\n"
    )

    base = ExperimentConfig().with_values({"dataset": "8gaussians", "batch_size": 256})
    spec = SweepSpec(base, "K", (0, 1, 2), "tau", (0.02, 0.05, 0.2), steps=args.steps, eval_samples=1024)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        cold = run_sweep(spec, directory=folder)
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        warm = run_sweep(spec, directory=folder)
        warm_s = time.perf_counter() - start
    same = all(np.array_equal(cold.values(m), warm.values(m), equal_nan=True) for m in ("energy", "w2", "modes"))
    print(f"| 3x3 sweep, {args.steps} steps/cell | wall s | cells from cache |")
    print("|---|---|---|")
    print(f"| cold (empty cache) | {cold_s:.2f} | {cold.cached_trials} |")
    print(f"| repeated (cache) | {warm_s:.4f} | {warm.cached_trials} |")
    print(f"| ratio cold / repeated | {cold_s / max(warm_s, 1e-9):.0f}x | identical numbers: {same} |\n")

    trainer = Trainer(base)
    trainer.run(args.steps)
    rows = []
    for n in (8, 32, 128, 512, 2048):
        start = time.perf_counter()
        noise = estimator_noise(trainer, resamples=8, probes=48, batch_size=n)
        rows.append((n, float(np.median(noise.spread)), noise.noise_to_signal, time.perf_counter() - start))
    first = rows[0][1]
    print("| N | median spread of V | spread / spread at N=8 | 1/sqrt(N/8) | median spread / median abs(mean V) | s |")
    print("|---|---|---|---|---|---|")
    for n, spread, nts, seconds in rows:
        print(f"| {n} | {spread:.3e} | {spread / first:.3f} | {1 / math.sqrt(n / 8):.3f} | {nts:.2f} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
