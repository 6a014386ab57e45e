"""``python -m drift_core train``: one 2D run with a progress bar; writes config.json, metrics.csv,
checkpoint.pt and scatter.png into ``--out``."""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from tqdm import tqdm

from ..checkpoint import CheckpointError
from ..config import ConfigError, Limits
from ..data.toy2d import MIXTURE_SIGMA, mixture_modes
from ..metrics import evaluate
from ..render import scatter_image
from ..runtime import make_generator
from ..train import Trainer
from . import UsageError
from .common import add_config_arguments, config_from_args, points_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train one 2D run", description=__doc__)
    add_config_arguments(p)
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder")
    p.add_argument("--resume", type=Path, help="continue from a checkpoint.pt (its config is used)")
    p.add_argument("--eval-every", type=int, default=250, help="steps between metric evaluations")
    p.add_argument("--eval-samples", type=int, default=2048, help="samples per evaluation")
    p.add_argument("--exact-w2", action="store_true", help="also compute exact W2 (POT) at each evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def reference_sample(trainer: Trainer, n: int):
    """A fixed held-out reference sample for metrics (same for every run of a dataset and seed)."""
    return trainer.sampler(n, generator=make_generator(10_000 + trainer.config.train.seed))


def evaluate_trainer(trainer: Trainer, n: int, *, exact_w2: bool = False) -> dict[str, float]:
    name = trainer.config.data.dataset
    return evaluate(trainer.sample(n), reference_sample(trainer, n), modes=mixture_modes(name),
                    sigma=MIXTURE_SIGMA.get(name), exact_w2=exact_w2)


def run(args: argparse.Namespace) -> int:
    if args.eval_every < 1 or args.eval_samples < 2:
        raise UsageError("--eval-every must be >= 1 and --eval-samples >= 2")
    if args.resume is not None:
        try:
            trainer = Trainer.load(args.resume, device=args.cfg_device)
        except CheckpointError as err:
            raise UsageError(f"cannot resume from {args.resume}: {err}") from None
        cfg = trainer.config
        if args.cfg_steps is not None:
            try:
                cfg = cfg.with_values({"steps": args.cfg_steps})
            except ConfigError as err:
                raise UsageError(str(err)) from None
            trainer.update(cfg)
    else:
        cfg = config_from_args(args)
        try:
            trainer = Trainer(cfg, points=points_from_args(args, cfg))
        except (ConfigError, ValueError) as err:
            raise UsageError(str(err)) from None
    Limits.from_env()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.to_json())
    metrics_path = out / "metrics.csv"
    append = args.resume is not None and metrics_path.exists()
    remaining = max(0, cfg.train.steps - trainer.step_count)
    diverged = None
    with open(metrics_path, "a" if append else "w", newline="") as fh:
        writer = None
        bar = tqdm(total=remaining, disable=args.quiet, desc=cfg.drift.label(), unit="step")
        for _ in range(remaining):
            record = trainer.step()
            if record.diverged:
                diverged = record
                break
            row = record.as_row()
            if record.step % args.eval_every == 0 or record.step == cfg.train.steps:
                row.update(evaluate_trainer(trainer, args.eval_samples, exact_w2=args.exact_w2))
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
    reference = reference_sample(trainer, 4096).numpy()
    scatter_image([(reference, (190, 190, 190)), (generated, (31, 119, 180))],
                  title=f"{cfg.data.dataset} | {cfg.drift.label()} | step {trainer.step_count}").save(out / "scatter.png")
    summary = {"step": trainer.step_count, "wall_s": round(trainer.wall_s, 3), **evaluate_trainer(trainer, args.eval_samples)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if diverged is not None:
        print(f"error: training diverged at step {diverged.step + 1}: {diverged.message}. "
              f"The last finite state was saved to {out / 'checkpoint.pt'}.", flush=True)
        return 3
    if not args.quiet:
        print(json.dumps(summary))
    return 0
