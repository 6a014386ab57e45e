"""Images throughput: generated images per second of one training step (generator + frozen encoder +
feature-space drift + backward + AdamW + EMA) for the tiny and base generators, baseline vs K=1,
measured side by side in one run; optionally trains both methods for a while on an image set and saves
their fixed-noise sample grids next to each other.

With ``--layouts``: the same for the feature-group layouts (today's default, per-location drift,
separate mean/std groups, both = the official style), plus the time of the drift and loss alone on
fixed features; with ``--quality-steps N`` also trains baseline and K=1 of each layout N steps on
``--grid-dataset`` and reports FID/KID-``--fid-n`` of their EMA samples (one seed).

    .venv/bin/python -m benchmarks.images_throughput                       # table only
    .venv/bin/python -m benchmarks.images_throughput --grid-steps 300      # + benchmarks/img/images_*.png
    .venv/bin/python -m benchmarks.images_throughput --generators tiny --layouts --quality-steps 300

Threads: torch uses DRIFT_TORCH_THREADS (default 1, as the app does; see drift_core.process.configure_torch_threads).
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
from drift_core.images.drift_loss import feature_drift_loss
from drift_core.images.features import drift_groups
from drift_core.images.fid import FIDEvaluator
from drift_core.images.models import count_parameters
from drift_core.images.render import tile_images
from drift_core.images.train import ImageTrainer

OUT = Path(__file__).resolve().parent / "img"
LAYOUTS = {
    "default": {},
    "per_location": {"per_location": True},
    "separate_mean_std": {"separate_mean_std": True},
    "official (both)": {"per_location": True, "separate_mean_std": True},
}
"""The feature-group layouts compared by ``--layouts``: config values of each."""


def images_per_second(
    generator: str,
    method: str,
    *,
    batch: int,
    encoder: str,
    device: str,
    warmup: int,
    steps: int,
    layout: dict | None = None,
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
            **(layout or {}),
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


def drift_milliseconds(layout: dict, method: str, *, batch: int, encoder: str, device: str, repeats: int) -> float:
    """Milliseconds of the drift and loss alone (feature_drift_loss on fixed, detached features of one
    batch: every group's scale, field and MSE), best of ``repeats``."""
    cfg = ImageExperimentConfig().with_values(
        {
            "method": method,
            "K": 1,
            "batch_size": batch,
            "positives": batch,
            "encoder": encoder,
            "device": device,
            **layout,
        }
    )
    trainer = ImageTrainer(cfg)
    batch_ = trainer.draw_batch()
    with torch.no_grad():
        gen = drift_groups(trainer.encoder(trainer.model(batch_.noise)), trainer.layout)
        pos = drift_groups(trainer.encoder(batch_.positives), trainer.layout)
    best = float("inf")
    for _ in range(repeats):
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        feature_drift_loss(gen, pos, trainer.drift_fn, batched_drift_fn=trainer.batched_drift_fn)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def picture_milliseconds(layout: dict, *, encoder: str, device: str, repeats: int) -> dict[str, float]:
    """{group: milliseconds of one arm's feature-space picture}: the view of the 64 display images of a
    snapshot (encoder, drift against the real sample) projected on the fitted plane, best of ``repeats``
    (the reference features and the planes computed beforehand, once per run)."""
    trainer = ImageTrainer(
        ImageExperimentConfig().with_values({"K": 1, "encoder": encoder, "device": device, **layout})
    )
    snap = trainer.snapshot(64)
    out = {}
    for group in trainer.feature_groups:
        projection = trainer.feature_projection(group)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            trainer.feature_view(group, images=snap.images).planar(projection)
            best = min(best, time.perf_counter() - start)
        out[group] = 1000 * best
    return out


def layout_quality(
    layout: dict, method: str, *, dataset: str, steps: int, batch: int, encoder: str, device: str, fid_n: int, seed: int
):
    """Train ``steps`` steps of ``method`` (K=1 for lookahead) in ``layout`` on ``dataset`` from ``seed``; return
    (FIDResult of fid_n EMA samples against fid_n images of the set, final drift RMS, training seconds)."""
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
            "seed": seed,
            **layout,
        }
    )
    trainer = ImageTrainer(cfg)
    start = time.perf_counter()
    records = trainer.run(steps)
    seconds = time.perf_counter() - start
    fid = FIDEvaluator(trainer.images, trainer.device, n_reference=fid_n)(trainer.fid_samples(fid_n))
    return fid, records[-1].drift_rms, seconds


def layouts_table(args, dev: str) -> None:
    print(
        f"layouts (tiny generator, batch {args.batch}, {args.encoder}): images/s of a training step, "
        f"ms of the drift and loss alone (best of {args.steps})"
    )
    print(
        f"{'layout':<18} {'groups':>6} {'base img/s':>10} {'K=1 img/s':>10} {'base drift ms':>13} {'K=1 drift ms':>12}"
    )
    for name, layout in LAYOUTS.items():
        rates = [
            images_per_second(
                "tiny",
                m,
                batch=args.batch,
                encoder=args.encoder,
                device=dev,
                warmup=args.warmup,
                steps=args.steps,
                layout=layout,
            )[0]
            for m in ("baseline", "lookahead")
        ]
        drift = [
            drift_milliseconds(layout, m, batch=args.batch, encoder=args.encoder, device=dev, repeats=args.steps)
            for m in ("baseline", "lookahead")
        ]
        groups = len(
            ImageTrainer(ImageExperimentConfig().with_values({"encoder": args.encoder, **layout})).feature_groups
        )
        print(
            f"{name:<18} {groups:>6} {rates[0]:>10.1f} {rates[1]:>10.1f} {drift[0]:>13.1f} {drift[1]:>12.1f}",
            flush=True,
        )
    print(f"feature-space picture of one arm (K=1, 64 display images, 256 reals): ms, best of {args.steps}")
    for name in ("default", "official (both)"):
        times = picture_milliseconds(LAYOUTS[name], encoder=args.encoder, device=dev, repeats=args.steps)
        print(f"  {name}: " + ", ".join(f"{g} {ms:.0f}" for g, ms in times.items()), flush=True)
    if args.quality_steps:
        print(
            f"quality after {args.quality_steps} steps on {args.grid_dataset} (batch {args.batch}, seed {args.seed}): "
            f"FID/KID-{args.fid_n} of EMA samples vs {args.fid_n} images of the set"
        )
        print(f"{'layout':<18} {'method':<14} {'FID':>8} {'KID':>8} {'drift RMS':>10} {'train s':>8}")
        for name, layout in LAYOUTS.items():
            if args.quality_layouts and name.split(" ")[0] not in args.quality_layouts.split(","):
                continue
            for method in ("baseline", "lookahead"):
                fid, rms, seconds = layout_quality(
                    layout,
                    method,
                    dataset=args.grid_dataset,
                    steps=args.quality_steps,
                    batch=args.batch,
                    encoder=args.encoder,
                    device=dev,
                    fid_n=args.fid_n,
                    seed=args.seed,
                )
                label = "baseline" if method == "baseline" else "lookahead K=1"
                print(
                    f"{name:<18} {label:<14} {fid.fid:>8.2f} {fid.kid:>8.4f} {rms:>10.4f} {seconds:>8.0f}", flush=True
                )


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
    parser.add_argument("--layouts", action="store_true", help="compare the feature-group layouts (tiny generator)")
    parser.add_argument("--quality-steps", type=int, default=0, help="with --layouts: train each this long, then FID")
    parser.add_argument("--fid-n", type=int, default=500, help="with --quality-steps: images per FID/KID")
    parser.add_argument("--seed", type=int, default=0, help="with --quality-steps: the runs' seed")
    parser.add_argument(
        "--quality-layouts", default="", help="with --quality-steps: only these layouts (e.g. default,official)"
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
    if args.layouts:
        layouts_table(args, dev)
        return
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
