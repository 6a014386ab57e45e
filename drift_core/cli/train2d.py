"""``python -m drift_core train``: one 2D run with a progress bar; writes config.json, metrics.csv,
checkpoint.pt and scatter.png into ``--out``."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoint import CheckpointError
from ..config import RESET_FIELDS, ConfigError, ExperimentConfig
from ..limits import Limits
from ..render import scatter_image
from ..run import EVAL_SAMPLES, Evaluator, Run
from ..runtime import stream
from ..train import Trainer
from . import UsageError
from .common import add_config_arguments, config_from_args, points_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train one 2D run", description=__doc__)
    add_config_arguments(p)
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint.pt (its config is used)")
    p.add_argument("--eval-every", type=int, default=250, help="steps between metric evaluations")
    p.add_argument("--eval-samples", type=int, default=EVAL_SAMPLES,
                   help="samples per evaluation (the app uses the default, so their numbers agree)")
    p.add_argument("--exact-w2", action="store_true", help="also compute exact W2 (POT) at each evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.eval_every < 1 or args.eval_samples < 2:
        raise UsageError("--eval-every must be >= 1 and --eval-samples >= 2")
    if args.resume is not None:
        trainer = resume_trainer(args)
        cfg = trainer.config
    else:
        cfg = config_from_args(args)
        try:
            trainer = Trainer(cfg, points=points_from_args(args, cfg))
        except (ConfigError, ValueError) as err:
            raise UsageError(str(err)) from None
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.to_json())
    metrics_path = out / "metrics.csv"
    append = args.resume is not None and metrics_path.exists()
    remaining = max(0, cfg.train.steps - trainer.step_count)
    run = Run({"run": trainer}, trainer.config)
    evaluator = run.evaluator if args.eval_samples == EVAL_SAMPLES else Evaluator.for_trainer(trainer, args.eval_samples)
    diverged = None
    out_of_memory = ""
    with open(metrics_path, "a" if append else "w", newline="") as fh:
        writer = None
        bar = tqdm(total=remaining, disable=args.quiet, desc=cfg.drift.label(), unit="step")
        for _ in range(remaining):
            try:
                advance = run.advance(1)
            except torch.OutOfMemoryError as err:
                out_of_memory = str(err)
                break
            if not advance.records:
                break
            record = advance.records[-1]
            if record.diverged:
                diverged = record
                break
            if record.message:  # e.g. a smaller batch or the CPU after running out of GPU memory
                tqdm.write(f"warning: step {record.step}: {record.message}", file=sys.stderr)
            row = record.as_row()
            if record.step % args.eval_every == 0 or record.step == cfg.train.steps:
                row.update(evaluator(trainer, mmd=True, exact_w2=args.exact_w2) or {"energy": float("nan")})
                bar.set_postfix(energy=f"{row['energy']:.4f}", loss=f"{record.loss:.2e}")
            if writer is None:
                fields = list(row) + [k for k in ("energy", "mmd2", "sliced_w2", "w2", "modes_covered", "high_quality") if k not in row]
                writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
                if not append:
                    writer.writeheader()
            writer.writerow(row)
            bar.update(1)
        bar.close()
    trainer.save(out / "checkpoint.pt")
    generated = trainer.sample(4096).numpy()
    reference = trainer.sampler(4096, generator=stream(cfg.train.seed, "reference")).numpy()
    scatter_image([(reference, (190, 190, 190)), (generated, (31, 119, 180))],
                  title=f"{cfg.data.dataset} | {cfg.drift.label()} | step {trainer.step_count}").save(out / "scatter.png")
    summary = {"step": trainer.step_count, "wall_s": round(trainer.wall_s, 3), **(evaluator(trainer, mmd=True) or {"energy": float("nan")})}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if diverged is not None:
        print(f"error: training diverged at step {diverged.step + 1}: {diverged.message}. "
              f"The last finite state was saved to {out / 'checkpoint.pt'}.", flush=True)
        return 3
    if out_of_memory:
        print(f"error: {out_of_memory}. The last state was saved to {out / 'checkpoint.pt'}.", file=sys.stderr, flush=True)
        return 3
    if not args.quiet:
        print(json.dumps(summary))
    return 0


def resume_trainer(args: argparse.Namespace) -> Trainer:
    """The trainer of ``--resume FILE``: refused with a message when the file is not a usable
    checkpoint, is beyond this server's limits, or disagrees with the dataset/architecture/seed the
    command line asks for. Live settings given on the command line (steps, lr, method, K, tau, batch
    size, any drift field) apply to the resumed run."""
    from .common import _SHORT_FLAGS

    try:
        limits = Limits.from_env()
    except ConfigError as err:
        raise UsageError(str(err)) from None
    if args.points is not None:
        raise UsageError("--points cannot be combined with --resume: the checkpoint carries its own data")
    try:
        trainer = Trainer.load(args.resume, device=args.cfg_device, limits=limits)
    except CheckpointError as err:
        raise UsageError(f"cannot resume from {args.resume}: {err}") from None
    except ValueError as err:  # an unavailable --device
        raise UsageError(str(err)) from None
    requested = {name: getattr(args, f"cfg_{name}") for name in _SHORT_FLAGS
                 if name != "device" and getattr(args, f"cfg_{name}") is not None}
    for item in args.overrides:
        if "=" not in item:
            raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        requested[key.strip()] = value
    if args.config is not None:
        if not args.config.is_file():
            raise UsageError(f"no such config file: {args.config}")
        try:
            requested = {**ExperimentConfig.from_json(args.config.read_text()).to_flat(), **requested}
        except ConfigError as err:
            raise UsageError(f"{args.config}: {err}") from None
    try:
        wanted = trainer.config.with_values(requested)
        limits.check(wanted)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    have, want = trainer.config.to_flat(), wanted.to_flat()
    clashes = [f"{k}={want[k]!r} (the checkpoint has {have[k]!r})" for k in RESET_FIELDS
               if k != "device" and want[k] != have[k]]
    if clashes:
        raise UsageError(f"{args.resume} is a run of another dataset or architecture: {', '.join(sorted(clashes))}. "
                         "Resume without those settings, or start a new run")
    trainer.update(wanted.with_values({"device": have["device"]}))
    return trainer
