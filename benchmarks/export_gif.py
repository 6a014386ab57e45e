"""Time to export a run as a GIF or MP4 (the Playground's and Compare's download buttons).

    python -m benchmarks.export_gif [--frames 60] [--repeats 3]

Builds ``--frames`` snapshots of 512 particles (the app's display size) from a lookahead K = 1 run of the
Playground's default network, then times, at each export's default frame size: ``gif_bytes`` (one arm),
``side_by_side_gif`` (two arms, Compare) and ``mp4_bytes`` (one arm). Prints the best of ``--repeats``
wall times and the file sizes.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from drift_core import export
from drift_core.config import ExperimentConfig
from drift_core.train import Trainer


def best_time(make, repeats: int) -> tuple[float, int]:
    """The best wall time of ``repeats`` calls of ``make`` and the size of what it returned."""
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        size = len(make())
        times.append(time.perf_counter() - start)
    return min(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ExperimentConfig().with_values({"dataset": "8gaussians", "K": 1})
    trainer = Trainer(config)
    snaps = []
    for _ in range(args.frames):
        trainer.run(2)
        snaps.append(trainer.snapshot(512))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"| export of {args.frames} frames, 512 particles | best of {args.repeats}, s | bytes |")
    print("|---|---|---|")
    cases = {
        "gif_bytes (one arm)": lambda: export.gif_bytes(snaps),
        "side_by_side_gif (two arms)": lambda: export.side_by_side_gif({"baseline": snaps, "lookahead K=1": snaps}),
        "mp4_bytes (one arm)": lambda: export.mp4_bytes(snaps),
    }
    for name, make in cases.items():
        seconds, size = best_time(make, args.repeats)
        print(f"| {name} | {seconds:.2f} | {size} |")


if __name__ == "__main__":
    main()
