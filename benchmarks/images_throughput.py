"""Images throughput: generated images per second of one training step (generator + frozen encoder +
feature-space drift + backward + AdamW + EMA) for the tiny and base generators, baseline vs K=1,
measured side by side in one run; optionally trains both methods for a while on an image set and saves
their fixed-noise sample grids next to each other.

    .venv/bin/python -m benchmarks.images_throughput                       # table only
    .venv/bin/python -m benchmarks.images_throughput --grid-steps 300      # + benchmarks/img/images_*.png

Threads: torch uses DRIFT_TORCH_THREADS (default 1, as the app does; see ui.safety.configure_torch_threads).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.models import count_parameters
from drift_core.images.render import tile_images
from drift_core.images.train import ImageTrainer

OUT = Path(__file__).resolve().parent / "img"


def images_per_second(
    generator: str, method: str, *, batch: int, encoder: str, device: str, warmup: int, steps: int
) -> tuple[float, int]:
    cfg = ImageExperimentConfig().with_values(
        {
            "generator": generator,
            "noise_dim": 64 if generator == "tiny" else 128,
            "method": method,
            "K": 1,
            "batch_size": batch,
            "positives": batch,
            "encoder": encoder,
            "device": device,
        }
    )
    trainer = ImageTrainer(cfg)
    trainer.run(warmup)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.run(steps)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start), count_parameters(trainer.model)


def sample_grids(dataset: str, steps: int, batch: int, encoder: str, device: str, alpha: float) -> Path:
    from PIL import Image, ImageDraw

    panels = []
    for method in ("baseline", "lookahead"):
        cfg = ImageExperimentConfig().with_values(
            {
                "dataset": dataset,
                "method": method,
                "K": 1,
                "batch_size": batch,
                "positives": batch,
                "encoder": encoder,
                "device": device,
                "ema_decay": 0.95,
                "alpha": alpha,
            }
        )
        trainer = ImageTrainer(cfg)
        start = time.perf_counter()
        records = trainer.run(steps)
        print(
            f"  {cfg.drift.label():<14} {steps} steps in {time.perf_counter() - start:.0f} s, "
            f"final drift RMS {records[-1].drift_rms:.4f}",
            flush=True,
        )
        grid = tile_images(trainer.display_grid_images(), nrow=8, scale=2)
        header = np.full((22, grid.shape[1], 3), 255, np.uint8)
        panel = Image.fromarray(np.concatenate([header, grid]))
        ImageDraw.Draw(panel).text(
            (6, 5), f"{cfg.drift.label()} | {dataset} | {encoder} | alpha {alpha:g} | step {steps}", fill=(0, 0, 0)
        )
        panels.append(np.asarray(panel))
    OUT.mkdir(exist_ok=True)
    path = OUT / f"images_{dataset}_{encoder}_alpha{alpha:g}_step{steps}.png"
    gap = np.full((panels[0].shape[0], 12, 3), 255, np.uint8)
    grid = Image.fromarray(np.concatenate([panels[0], gap, panels[1]], axis=1))
    grid.quantize(colors=64).save(path, optimize=True)  # a small file for the repository
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--encoder", default="random-conv")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--generators", default="tiny,base")
    parser.add_argument(
        "--grid-steps", type=int, default=0, help="also train baseline and K=1 this long and save grids"
    )
    parser.add_argument("--grid-dataset", default="demo-digits")
    parser.add_argument(
        "--alpha", type=float, default=0.1, help="lookahead step of the K=1 grid (the images' default 0.1)"
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, int(os.environ.get("DRIFT_TORCH_THREADS", "1"))))
    dev = (
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else platform.processor() or platform.machine()
    print(
        f"device {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, "
        f"encoder {args.encoder}, {args.steps} timed steps after {args.warmup} warm-up"
    )
    print(f"{'generator':<10} {'params':>9} {'baseline img/s':>15} {'K=1 img/s':>10} {'K=1 / baseline':>15}")
    for generator in args.generators.split(","):
        base, params = images_per_second(
            generator,
            "baseline",
            batch=args.batch,
            encoder=args.encoder,
            device=dev,
            warmup=args.warmup,
            steps=args.steps,
        )
        k1, _ = images_per_second(
            generator,
            "lookahead",
            batch=args.batch,
            encoder=args.encoder,
            device=dev,
            warmup=args.warmup,
            steps=args.steps,
        )
        print(f"{generator:<10} {params:>9,} {base:>15.1f} {k1:>10.1f} {k1 / base:>15.2f}", flush=True)
    if args.grid_steps:
        print(f"sample grids ({args.grid_dataset}, {args.grid_steps} steps each):")
        print(f"  saved {sample_grids(args.grid_dataset, args.grid_steps, args.batch, args.encoder, dev, args.alpha)}")


if __name__ == "__main__":
    main()
