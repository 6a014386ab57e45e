"""Playground default model vs the paper's 3x256 preset: is the cheaper default visibly worse?

Both train from the same seed on the same batches (lock-step), N = 512, tau = 0.05, Adam 1e-3,
baseline drift, for the same number of steps, on checkerboard and swiss roll. Reported: energy
distance and sliced W2 (4096 generated vs 4096 fresh data points) and training steps per second;
scatter PNGs side by side under benchmarks/img/playground_quality_<dataset>.png.

    python -m benchmarks.playground_quality [--steps 1500] [--out benchmarks/img]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from drift_core.config import ExperimentConfig, ModelConfig
from drift_core.metrics import energy_distance, sliced_wasserstein
from drift_core.render import scatter_image
from drift_core.runtime import make_generator
from drift_core.train import Lockstep

PAPER_MODEL = ModelConfig(noise_dim=32, width=256, depth=3)


def compare(dataset: str, steps: int, out: Path) -> list[dict]:
    default = ExperimentConfig().with_values({"dataset": dataset, "batch_size": 512})
    # Lockstep needs equal models; run the two arms as separate lock-steps on identical batch streams
    rows, images = [], []
    bounds = None
    for name, model in (("default", default.model), ("paper 3x256", PAPER_MODEL)):
        cfg = replace(default, model=model)
        run = Lockstep({name: cfg})
        start = time.perf_counter()
        for _ in range(steps):
            record = run.step()[name]
            if record.diverged:
                break
        wall = time.perf_counter() - start
        trainer = run.trainers[name]
        ref = trainer.sampler(4096, generator=make_generator(12345))
        gen = trainer.sample(4096, generator=make_generator(999))
        if bounds is None:
            lo, hi = ref.min(0).values - 0.3, ref.max(0).values + 0.3
            span = float((hi - lo).max())
            mid = (lo + hi) / 2
            bounds = (
                float(mid[0]) - span / 2,
                float(mid[0]) + span / 2,
                float(mid[1]) - span / 2,
                float(mid[1]) + span / 2,
            )
        rows.append(
            {
                "dataset": dataset,
                "model": f"{name} ({model.noise_dim}->{model.width}x{model.depth}->2)",
                "steps": trainer.step_count,
                "energy": energy_distance(gen, ref),
                "sliced_w2": sliced_wasserstein(gen, ref),
                "steps_per_s": trainer.step_count / wall,
            }
        )
        images.append(
            scatter_image(
                [(ref.numpy(), (205, 205, 205)), (gen.numpy(), (31, 119, 180))],
                bounds=bounds,
                size=300,
                radius=1.0,
                title=f"{dataset}: {name}, N=512, {trainer.step_count} steps",
            )
        )
    sheet = Image.new("RGB", (sum(i.width for i in images), images[0].height), "white")
    x = 0
    for img in images:
        sheet.paste(img, (x, 0))
        x += img.width
    out.mkdir(parents=True, exist_ok=True)
    sheet.save(out / f"playground_quality_{dataset}.png", optimize=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/img"))
    parser.add_argument("--datasets", nargs="+", default=["checkerboard", "swissroll"])
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, steps {args.steps}")
    print("| dataset | model | steps | energy distance | sliced W2 | train steps/s |")
    print("|---|---|---|---|---|---|")
    for dataset in args.datasets:
        for r in compare(dataset, args.steps, args.out):
            print(
                f"| {r['dataset']} | {r['model']} | {r['steps']} | {r['energy']:.4f} | {r['sliced_w2']:.4f} | {r['steps_per_s']:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
