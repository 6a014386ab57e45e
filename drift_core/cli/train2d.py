"""``python -m drift_core train``: one 2D run with a progress bar; writes config.json, metrics.csv,
checkpoint.pt (every --checkpoint-every steps and at the end), scatter.png and summary.json into
``--out``, each atomically: a killed run leaves complete files (metrics.csv never ahead of
checkpoint.pt) and continues with ``--resume OUT/checkpoint.pt``. ``--particles`` runs particle mode
(the field without the network, :mod:`drift_core.particles`) and writes the same files; data embedded in
D dimensions (``--set dimension=16``) is drawn and evaluated on its 2D projection."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from .. import palette
from ..checkpoint import CheckpointError
from ..config import RESET_FIELDS, ConfigError, ExperimentConfig
from ..export import ArmLabel
from ..files import atomic_write, remove_stale_temporaries, write_text
from ..particles import ParticleTrainer, build_arm, load_arm
from ..render import scatter_image
from ..run import EVAL_SAMPLES, Evaluator, Run
from ..runtime import stream
from ..train import ToyArm
from . import UsageError
from .common import (
    MetricsLog,
    add_command,
    add_config_arguments,
    add_particles_argument,
    config_from_args,
    int_in,
    output_folder,
    points_from_args,
    read_config_file,
    server_limits,
)

MAX_EVAL_SAMPLES = 16_384
"""Most samples per evaluation: the metrics build n x n distance matrices (2 GB of doubles at this n)."""


def add_parser(sub) -> None:
    p = add_command(sub, "train", help="train one 2D run", description=__doc__)
    add_config_arguments(p)
    add_particles_argument(p, "train")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint.pt (its config is used)")
    p.add_argument("--eval-every", type=int_in(1), default=250, help="steps between metric evaluations")
    p.add_argument(
        "--checkpoint-every",
        type=int_in(0),
        default=250,
        help="steps between checkpoints, with metrics.csv written alongside (0: only at the end)",
    )
    p.add_argument(
        "--eval-samples",
        type=int_in(2, MAX_EVAL_SAMPLES),
        default=EVAL_SAMPLES,
        help="samples per evaluation (the app uses the default, so their numbers agree); in particle mode "
        "also the number of particles",
    )
    p.add_argument("--exact-w2", action="store_true", help="also compute exact W2 (POT) at each evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        trainer = resume_trainer(args)
        cfg = trainer.config
    else:
        cfg = config_from_args(args)
        try:
            trainer = build_arm(cfg, points=points_from_args(args, cfg), particles=args.eval_samples)
        except (ConfigError, ValueError) as err:
            raise UsageError(str(err)) from None
    if isinstance(trainer, ParticleTrainer) and trainer.particles.shape[0] != args.eval_samples:
        raise UsageError(
            f"{args.resume} holds {trainer.particles.shape[0]} particles, which are the samples it is evaluated "
            f"on: resume it with --eval-samples {trainer.particles.shape[0]}"
        )
    out = output_folder(args.out)
    remove_stale_temporaries(
        out, ["config.json", "metrics.csv", "checkpoint.pt", "scatter.png", "summary.json"]
    )  # left by a killed earlier run
    write_text(out / "config.json", cfg.to_json())
    metrics = MetricsLog(out / "metrics.csv", resume_step=trainer.step_count if args.resume is not None else None)
    checkpoint = out / "checkpoint.pt"

    def save() -> None:  # metrics first: a kill between the two leaves metrics ahead, which --resume trims
        metrics.write()
        trainer.save(checkpoint)

    remaining = max(0, cfg.train.steps - trainer.step_count)
    run = Run({"run": trainer}, trainer.config)
    evaluator = (
        run.evaluator if args.eval_samples == EVAL_SAMPLES else Evaluator.for_trainer(trainer, args.eval_samples)
    )
    diverged = None
    out_of_memory = ""
    bar = tqdm(total=remaining, disable=args.quiet, desc=run.label("run"), unit="step")
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
        metrics.append(row)
        if args.checkpoint_every and record.step % args.checkpoint_every == 0:
            save()
        bar.update(1)
    bar.close()
    save()
    generated = trainer.sample(4096).numpy()
    reference = trainer.sampler(4096, generator=stream(cfg.train.seed, "reference")).numpy()
    picture = scatter_image(
        [(reference, palette.DATA.colour), (generated, palette.GENERATED.colour)],
        title=f"{cfg.data.dataset} · {run.label('run')} · step {trainer.step_count}",
        subtitle=ArmLabel.of(cfg).settings(),
    )
    with atomic_write(out / "scatter.png") as fh:
        picture.save(fh, format="PNG")
    summary = {
        "step": trainer.step_count,
        "wall_s": round(trainer.wall_s, 3),
        **(evaluator(trainer, mmd=True) or {"energy": float("nan")}),
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    if diverged is not None:
        print(
            f"error: training diverged at step {diverged.step + 1}: {diverged.message}. "
            f"The last finite state was saved to {checkpoint}.",
            flush=True,
        )
        return 3
    if out_of_memory:
        print(f"error: {out_of_memory}. The last state was saved to {checkpoint}.", file=sys.stderr, flush=True)
        return 3
    if not args.quiet:
        print(json.dumps(summary))
    return 0


def resume_trainer(args: argparse.Namespace) -> ToyArm:
    """The arm (network or particles) of ``--resume FILE``: refused with a message when the file is not
    a usable checkpoint, is beyond this server's limits, or disagrees with the dataset/architecture/
    seed/mode the command line asks for. Live settings given on the command line (steps, lr, method, K,
    tau, batch size, particle step, any drift field) apply to the resumed run."""
    limits = server_limits()
    if args.points is not None:
        raise UsageError("--points cannot be combined with --resume: the checkpoint carries its own data")
    requested = dict(args.settings)
    if args.particle_mode:
        requested["mode"] = "particles"
    device = requested.pop("device", None)
    try:
        trainer = load_arm(args.resume, device=device, limits=limits)
    except CheckpointError as err:
        raise UsageError(f"cannot resume from {args.resume}: {err}") from None
    except ConfigError as err:  # an unavailable --device
        raise UsageError(str(err)) from None
    if args.config is not None:
        try:
            requested = {**ExperimentConfig.from_json(read_config_file(args.config)).to_flat(), **requested}
        except ConfigError as err:
            raise UsageError(f"{args.config}: {err}") from None
    try:
        wanted = trainer.config.with_values(requested)
        limits.check(wanted)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    have, want = trainer.config.to_flat(), wanted.to_flat()
    clashes = [
        f"{k}={want[k]!r} (the checkpoint has {have[k]!r})"
        for k in RESET_FIELDS
        if k != "device" and want[k] != have[k]
    ]
    if clashes:
        raise UsageError(
            f"{args.resume} is a run of another dataset or architecture: {', '.join(sorted(clashes))}. "
            "Resume without those settings, or start a new run"
        )
    trainer.update(wanted.with_values({"device": have["device"]}))
    return trainer
