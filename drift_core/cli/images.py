"""``python -m drift_core train-images``: train a one-step image generator (baseline or lookahead
drifting) with a progress bar, periodic checkpoints, ``--resume`` and periodic FID/KID.

Writes config.json, metrics.csv, checkpoint.pt, samples.png (EMA, fixed noise) and summary.json into
``--out``. Multi-GPU: ``torchrun --nproc_per_node=G -m drift_core train-images ...`` (DDP; NCCL on
GPUs, gloo on CPUs); batch sizes are per process and the drift of each feature group is computed over
the all-gathered batch (see drift_core/images/train.py). Only rank 0 writes files and computes FID.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch.distributed as torch_dist
from tqdm import tqdm

from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..images.config import IMAGE_PRESETS, ImageExperimentConfig, image_preset
from ..images.data import DatasetUnavailable
from ..images.features import EncoderUnavailable
from ..images.fid import FIDEvaluator, FIDWeightsUnavailable
from ..images.train import ImageTrainer, init_distributed
from ..run import Run
from . import UsageError
from .common import add_preset_arguments, config_from_preset_args

_SHORT_FLAGS = {
    "dataset": "--dataset", "method": "--method", "K": "--K", "tau": "--tau", "batch_size": "--batch-size",
    "positives": "--positives", "lr": "--lr", "steps": "--steps", "seed": "--seed", "device": "--device",
    "generator": "--generator", "encoder": "--encoder",
}
_CSV_FIELDS = ["step", "loss", "drift_rms", "grad_norm", "lr", "wall_s", "step_s", "images_per_s", "K",
               "term_rms_0", "term_rms_1", "fid", "kid", "kid_std", "fid_n", "fid_label"]


def add_parser(sub) -> None:
    p = sub.add_parser("train-images", help="train a one-step image generator (CIFAR10 or an offline demo set)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_arguments(p, presets=IMAGE_PRESETS, default_preset="demo_cpu", short_flags=_SHORT_FLAGS,
                         config_help="a config JSON (as written to --out/config.json)",
                         set_help="override any image config field; repeatable")
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR10 if it is absent")
    p.add_argument("--out", type=Path, default=Path("runs/images"), help="output folder")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint.pt (its config is used; --steps may extend it)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (0: only at the end)")
    p.add_argument("--fid-every", type=int, default=0, help="steps between FID/KID evaluations (0: off)")
    p.add_argument("--fid-at", default="", help="comma-separated steps with an FID evaluation, e.g. 30000,40000,50000")
    p.add_argument("--fid-samples", type=int, default=2000, help="generated images per FID (FID-N is biased at small N)")
    p.add_argument("--fid-reference", type=int, default=0, help="reference images for the statistics (0: the whole set)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> ImageExperimentConfig:
    return config_from_preset_args(args, config_class=ImageExperimentConfig, preset_fn=image_preset,
                                   short_flags=_SHORT_FLAGS, extra_values={"download": True} if args.download else None)


def _fid_steps(args, total: int) -> set[int]:
    steps = set()
    if args.fid_at.strip():
        try:
            steps |= {int(s) for s in args.fid_at.split(",") if s.strip()}
        except ValueError:
            raise UsageError(f"--fid-at expects comma-separated integers, got {args.fid_at!r}") from None
    if args.fid_every > 0:
        steps |= set(range(args.fid_every, total + 1, args.fid_every))
    return steps


def _open_metrics(path: Path, resumed_at: int | None):
    """metrics.csv opened for appending rows, with its header. On a resume, the rows after the
    checkpoint's step are dropped first: they belong to steps the checkpoint does not have (a run
    stopped between checkpoints, or one that went back to a kept state when it diverged), and the
    resumed run writes them again."""
    kept = []
    if resumed_at is not None and path.exists():
        with open(path, newline="") as fh:
            kept = [row for row in csv.DictReader(fh) if row.get("step", "").isdigit() and int(row["step"]) <= resumed_at]
    fh = open(path, "w", newline="")
    writer = csv.DictWriter(fh, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(kept)
    return fh, writer


def _build_trainer(args, cfg, device, dist_ctx) -> ImageTrainer:
    try:
        if args.resume is not None:
            trainer = ImageTrainer.load(args.resume, device=device, dist=dist_ctx)
            if args.cfg_steps is not None:
                trainer.update(trainer.config.with_values({"steps": args.cfg_steps}))
            return trainer
        return ImageTrainer(cfg, device=device, dist=dist_ctx)
    except CheckpointError as err:
        raise UsageError(f"cannot resume from {args.resume}: {err}") from None
    except (DatasetUnavailable, EncoderUnavailable, ConfigError) as err:
        raise UsageError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    # torchvision (for the PNG grid) costs seconds to import: only this command needs it, so it is
    # imported here rather than when the CLI starts
    from ..images.render import save_tiled_images

    if args.fid_samples < 2 or args.checkpoint_every < 0 or args.fid_every < 0:
        raise UsageError("--fid-samples must be >= 2; --checkpoint-every and --fid-every must be >= 0")
    cfg = None if args.resume is not None else config_from_args(args)
    try:
        dist_ctx, device = init_distributed((cfg.train.device if cfg else args.cfg_device) or "auto")
    except ValueError as err:
        raise UsageError(str(err)) from None
    trainer = _build_trainer(args, cfg, device, dist_ctx)
    training = Run.around(trainer)  # advancing, the step budget and divergence as in the app
    cfg = trainer.config
    main = dist_ctx.is_main
    out: Path = args.out
    total = cfg.train.steps
    fid_steps = _fid_steps(args, total)
    fid = FIDEvaluator(trainer.images, trainer.device, n_reference=args.fid_reference or None) if main else None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(cfg.to_json())
    last_fid: dict = {}
    diverged = None
    fh, writer = _open_metrics(out / "metrics.csv", trainer.step_count if args.resume is not None else None) if main else (None, None)
    try:
        bar = tqdm(total=max(0, total - training.step), disable=args.quiet or not main,
                   desc=f"{cfg.data.dataset} {cfg.drift.label()}", unit="step")
        while training.step < total:
            advance = training.advance(1)
            if advance.paused_reason:
                diverged = advance
                break
            record = advance.records[-1]
            row = record.as_row()
            if record.step in fid_steps:
                if main:
                    try:
                        last_fid = fid(trainer.fid_samples(args.fid_samples)).as_dict()
                    except FIDWeightsUnavailable as err:
                        raise UsageError(str(err)) from None
                    row.update(last_fid)
                _barrier(dist_ctx)
            if main:
                writer.writerow(row)
                if args.checkpoint_every and record.step % args.checkpoint_every == 0:
                    trainer.save(out / "checkpoint.pt")
            bar.set_postfix(loss=f"{record.loss:.3f}", rms=f"{record.drift_rms:.3g}", **({"fid": f"{last_fid['fid']:.2f}"} if last_fid else {}))
            bar.update(1)
        bar.close()
    finally:
        if fh is not None:
            fh.close()
    if main:
        trainer.save(out / "checkpoint.pt")
        save_tiled_images(trainer.display_grid_images(), out / "samples.png", nrow=8, scale=2)
        summary = {"step": trainer.step_count, "wall_s": round(trainer.wall_s, 3), "dataset": cfg.data.dataset,
                   "method": cfg.drift.label(), "encoder": trainer.encoder.name, "world_size": dist_ctx.world_size, **last_fid}
        if training.history.records:
            last = training.history.records[-1]
            summary.update(loss=last.loss, drift_rms=last.drift_rms)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        if not args.quiet:
            print(json.dumps(summary))
    _barrier(dist_ctx)
    _shutdown(dist_ctx)
    if diverged is not None:
        if main:
            failed = diverged.records[-1]
            print(f"error: training diverged at step {failed.step + 1}: {failed.message}. It went back to step "
                  f"{trainer.step_count}, its newest kept state, which was saved to {out / 'checkpoint.pt'}; "
                  "resume from it with a lower --lr.", flush=True)
        return 3
    return 0


def _barrier(dist_ctx) -> None:
    if dist_ctx.world_size > 1:
        torch_dist.barrier()


def _shutdown(dist_ctx) -> None:
    if dist_ctx.world_size > 1 and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
