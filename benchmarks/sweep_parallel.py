"""A 4 x 4 sweep with 3 seeds (48 trials), serial vs on local worker processes: wall time and identical numbers.

    python -m benchmarks.sweep_parallel [--steps 100] [--workers 2]

K in {0, 1, 2, 3} x tau in {0.02, 0.05, 0.1, 0.2} on 8gaussians (the playground network, N = 256), seeds
0, 1, 2, each run with an empty cache folder of its own, in the order serial, parallel, parallel, serial
(so a load that drifts during the measurement weighs on both alike): serial is one trial after another in
this process (what ``drift-lab sweep --workers 1`` does), parallel is ``--workers`` processes
(``drift-lab sweep --workers N``; the first parallel run also starts the fork server, the second finds it
running). Prints the machine, whether the kernel groups CPU time per session (autogroup: then a session's
processes share one session's CPU share on a busy machine, however many there are), the load average
around each run, the wall times and whether every trial's metrics and final particles are identical.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

from drift_core.config import ExperimentConfig
from drift_core.sweep import METRICS, SweepJob, SweepResult, SweepSpec, run_sweep


def read_first_line(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.readline().strip()
    except OSError:
        return "n/a"


def identical(a: SweepResult, b: SweepResult) -> bool:
    if a.trials.keys() != b.trials.keys():
        return False
    for key, x in a.trials.items():
        y = b.trials[key]
        if not np.array_equal(x.particles, y.particles):
            return False
        if any(
            not (x.metrics[m] == y.metrics[m] or (np.isnan(x.metrics[m]) and np.isnan(y.metrics[m]))) for m in x.metrics
        ):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="training steps per trial")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the parallel run")
    args = parser.parse_args()
    base = ExperimentConfig().with_values({"dataset": "8gaussians", "batch_size": 256})
    spec = SweepSpec(base, "K", (0, 1, 2, 3), "tau", (0.02, 0.05, 0.1, 0.2), steps=args.steps, seeds=(0, 1, 2))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(usable: {len(os.sched_getaffinity(0))}), torch {torch.__version__}; "
        f"kernel autogroup: {read_first_line('/proc/sys/kernel/sched_autogroup_enabled')}\n"
    )
    trials = len(spec.trials())
    print(
        f"| 4x4 sweep x 3 seeds = {trials} trials, {args.steps} steps each | wall s | trials/s | load average before -> after |"
    )
    print("|---|---|---|---|")
    results: dict[str, list[float]] = {"serial": [], "parallel": []}
    runs: list[SweepResult] = []
    with tempfile.TemporaryDirectory() as folder:
        for n, mode in enumerate(("serial", "parallel", "parallel", "serial")):
            directory = os.path.join(folder, str(n))
            before = read_first_line("/proc/loadavg")
            start = time.perf_counter()
            if mode == "serial":
                result = run_sweep(spec, directory=directory)
            else:
                job = SweepJob(spec, directory=directory, workers=args.workers).start()
                job.wait()
                if job.error is not None:
                    raise SystemExit(f"the parallel sweep failed: {job.error}")
                result = job.result
            seconds = time.perf_counter() - start
            results[mode].append(seconds)
            runs.append(result)
            label = (
                "serial (this process, 1 torch thread)"
                if mode == "serial"
                else f"{args.workers} worker processes, 1 torch thread each"
                + (" (starts the fork server)" if len(results["parallel"]) == 1 else " (fork server running)")
            )
            load = f"{' '.join(before.split()[:3])} -> {' '.join(read_first_line('/proc/loadavg').split()[:3])}"
            print(f"| {label} | {seconds:.1f} | {trials / seconds:.2f} | {load} |", flush=True)
    same = all(identical(runs[0], other) for other in runs[1:])
    ratio = min(results["serial"]) / min(results["parallel"])
    print(f"| best serial / best parallel | {ratio:.2f}x | | identical numbers in all four runs: {same} |\n")
    serial = runs[0]
    best = serial.best_cell("energy")
    print(
        f"energy means over cells: {np.nanmin(serial.mean('energy')):.4f}..{np.nanmax(serial.mean('energy')):.4f}, "
        f"median std {np.nanmedian(serial.std('energy')):.4f}; best {spec.cell_label(*best)}"
    )
    print(serial.verdict("energy"))
    for other in runs[1:]:
        for metric in METRICS:
            assert np.array_equal(serial.values(metric), other.values(metric), equal_nan=True), metric


if __name__ == "__main__":
    main()
