"""``python -m drift_core train-images``: train a one-step image generator (baseline or lookahead
drifting) with a progress bar, periodic checkpoints, ``--resume`` and periodic FID/KID.

Writes config.json, metrics.csv, checkpoint.pt, samples.png (EMA, fixed noise) and summary.json into
``--out``. The official code's feature groups: ``--set per_location=true`` (each location of a feature
map its own drift problem) and ``--set separate_mean_std=true`` (channel means and stds as two groups). Multi-GPU: ``torchrun --nproc_per_node=G -m drift_core train-images ...`` (DDP; NCCL on
GPUs, gloo on CPUs); batch sizes are per process and the drift of each feature group is computed over
the all-gathered batch (see drift_core/images/train.py). Only rank 0 writes files and computes FID.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch.distributed as torch_dist
from PIL import Image
from tqdm import tqdm

from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..files import atomic_write, remove_stale_temporaries, write_text
from ..images.config import IMAGE_PRESETS, ImageExperimentConfig, image_preset
from ..images.data import DatasetUnavailable
from ..images.features import EncoderUnavailable
from ..images.fid import FIDEvaluator, FIDWeightsUnavailable
from ..images.train import ImageTrainer, init_distributed
from ..run import Run
from . import UsageError
from .common import (
    COMMON_FIELDS,
    MetricsLog,
    add_command,
    add_preset_arguments,
    config_from_preset_args,
    int_in,
    int_list,
    output_folder,
)

_FIELDS = COMMON_FIELDS + ("positives", "generator", "encoder")
_CSV_FIELDS = [
    "step",
    "loss",
    "drift_rms",
    "grad_norm",
    "lr",
    "wall_s",
    "step_s",
    "images_per_s",
    "K",
    "term_rms_0",
    "term_rms_1",
    "fid",
    "kid",
    "kid_std",
    "fid_n",
    "fid_label",
]


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "train-images",
        help="train a one-step image generator (CIFAR10 or an offline demo set)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_preset_arguments(
        p,
        config_class=ImageExperimentConfig,
        presets=IMAGE_PRESETS,
        default_preset="demo_cpu",
        fields=_FIELDS,
        config_help="a config JSON (as written to --out/config.json)",
    )
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR10 if it is absent")
    p.add_argument("--out", type=Path, default=Path("runs/images"), help="output folder")
    p.add_argument(
        "--resume", type=Path, help="continue from a checkpoint.pt (its config is used; --steps may extend it)"
    )
    p.add_argument(
        "--checkpoint-every",
        type=int_in(0),
        default=1000,
        help="steps between checkpoints, with metrics.csv written alongside (0: only at the end)",
    )
    p.add_argument("--fid-every", type=int_in(0), default=0, help="steps between FID/KID evaluations (0: off)")
    p.add_argument(
        "--fid-at",
        type=int_list,
        default=[],
        help="comma-separated steps with an FID evaluation, e.g. 30000,40000,50000",
    )
    p.add_argument(
        "--fid-samples",
        type=int_in(2, 1_000_000),
        default=2000,
        help="generated images per FID (FID-N is biased at small N)",
    )
    p.add_argument(
        "--fid-reference", type=int_in(0), default=0, help="reference images for the statistics (0: the whole set)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> ImageExperimentConfig:
    return config_from_preset_args(
        args,
        config_class=ImageExperimentConfig,
        preset_fn=image_preset,
        extra_values={"download": True} if args.download else None,
    )


def _fid_steps(args, total: int) -> set[int]:
    steps = set(args.fid_at)
    if args.fid_every > 0:
        steps |= set(range(args.fid_every, total + 1, args.fid_every))
    return steps


def _build_trainer(args, cfg, device, dist_ctx) -> ImageTrainer:
    try:
        if args.resume is not None:
            trainer = ImageTrainer.load(args.resume, device=device, dist=dist_ctx)
            if "steps" in args.settings:
                trainer.update(trainer.config.with_values({"steps": args.settings["steps"]}))
            return trainer
        return ImageTrainer(cfg, device=device, dist=dist_ctx)
    except CheckpointError as err:
        raise UsageError(f"cannot resume from {args.resume}: {err}") from None
    except (DatasetUnavailable, EncoderUnavailable, ConfigError) as err:
        raise UsageError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    # torchvision (for the PNG grid) costs seconds to import: only this command needs it, so it is
    # imported here rather than when the CLI starts
    from ..images.render import tile_images

    cfg = None if args.resume is not None else config_from_args(args)
    try:
        dist_ctx, device = init_distributed((cfg.train.device if cfg else args.settings.get("device")) or "auto")
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
        output_folder(out)
        remove_stale_temporaries(out, ["config.json", "metrics.csv", "checkpoint.pt", "samples.png", "summary.json"])
        write_text(out / "config.json", cfg.to_json())
    metrics = MetricsLog(
        out / "metrics.csv", resume_step=trainer.step_count if args.resume is not None else None, columns=_CSV_FIELDS
    )

    def save() -> None:  # metrics first: a kill between the two leaves metrics ahead, which --resume trims
        metrics.write()
        trainer.save(out / "checkpoint.pt")

    last_fid: dict = {}
    diverged = None
    bar = tqdm(
        total=max(0, total - training.step),
        disable=args.quiet or not main,
        desc=f"{cfg.data.dataset} {cfg.drift.label()}",
        unit="step",
    )
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
            metrics.append(row)
            if args.checkpoint_every and record.step % args.checkpoint_every == 0:
                save()
        bar.set_postfix(
            loss=f"{record.loss:.3f}",
            rms=f"{record.drift_rms:.3g}",
            **({"fid": f"{last_fid['fid']:.2f}"} if last_fid else {}),
        )
        bar.update(1)
    bar.close()
    if main:
        save()
        with atomic_write(out / "samples.png") as fh:
            Image.fromarray(tile_images(trainer.display_grid_images(), nrow=8, scale=2)).save(fh, format="PNG")
        summary = {
            "step": trainer.step_count,
            "wall_s": round(trainer.wall_s, 3),
            "dataset": cfg.data.dataset,
            "method": cfg.drift.label(),
            "encoder": trainer.encoder.name,
            "world_size": dist_ctx.world_size,
            **last_fid,
        }
        if training.history.records:
            last = training.history.records[-1]
            summary.update(loss=last.loss, drift_rms=last.drift_rms)
        write_text(out / "summary.json", json.dumps(summary, indent=2))
        if not args.quiet:
            print(json.dumps(summary))
    _barrier(dist_ctx)
    _shutdown(dist_ctx)
    if diverged is not None:
        if main:
            failed = diverged.records[-1]
            print(
                f"error: training diverged at step {failed.step + 1}: {failed.message}. It went back to step "
                f"{trainer.step_count}, its newest kept state, which was saved to {out / 'checkpoint.pt'}; "
                "resume from it with a lower --lr.",
                flush=True,
            )
        return 3
    return 0


def _barrier(dist_ctx) -> None:
    if dist_ctx.world_size > 1:
        torch_dist.barrier()


def _shutdown(dist_ctx) -> None:
    if dist_ctx.world_size > 1 and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
