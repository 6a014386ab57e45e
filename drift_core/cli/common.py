"""Arguments shared by the 2D commands: a preset plus typed overrides of any config field."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, ExperimentConfig, flat_field_names, preset, PRESETS
from ..limits import Limits
from ..data.points import PointSetError, load_points
from . import UsageError

_SHORT_FLAGS = {
    "dataset": "--dataset", "method": "--method", "K": "--K", "tau": "--tau", "batch_size": "--batch-size",
    "lr": "--lr", "steps": "--steps", "seed": "--seed", "device": "--device",
}


def add_preset_arguments(parser: argparse.ArgumentParser, *, presets, default_preset: str,
                         short_flags: dict[str, str], config_help: str, set_help: str) -> None:
    """--preset, --config, one short flag per common field, and --set NAME=VALUE for any field."""
    parser.add_argument("--preset", default=default_preset, help=f"starting configuration: {', '.join(presets)}")
    parser.add_argument("--config", type=Path, help=config_help)
    for name, flag in short_flags.items():
        parser.add_argument(flag, dest=f"cfg_{name}", default=None, metavar=name.upper(), help=f"override {name}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE", help=set_help)


def config_from_preset_args(args: argparse.Namespace, *, config_class, preset_fn, short_flags: dict[str, str],
                            extra_values: dict | None = None):
    """The config named by --config or --preset, with the short flags, then --set overrides, then
    ``extra_values`` applied (type-checked). Any problem is a UsageError with the reason."""
    try:
        if args.config is not None:
            if not args.config.is_file():
                raise UsageError(f"no such config file: {args.config}")
            cfg = config_class.from_json(args.config.read_text())
        else:
            cfg = preset_fn(args.preset)
        values = {name: getattr(args, f"cfg_{name}") for name in short_flags if getattr(args, f"cfg_{name}") is not None}
        for item in args.overrides:
            if "=" not in item:
                raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
            key, value = item.split("=", 1)
            values[key.strip()] = value
        values.update(extra_values or {})
        return cfg.with_values(values)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    add_preset_arguments(parser, presets=PRESETS, default_preset="playground", short_flags=_SHORT_FLAGS,
                         config_help="a config JSON (as written by 'train' or exported by the app)",
                         set_help=f"override any field ({', '.join(flat_field_names())}); repeatable")
    parser.add_argument("--points", type=Path, help="CSV of x,y rows for dataset 'custom'")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    dataset_given = args.cfg_dataset is not None or any(o.split("=", 1)[0].strip() == "dataset" for o in args.overrides)
    extra = {"dataset": "custom"} if getattr(args, "points", None) is not None and not dataset_given else None
    cfg = config_from_preset_args(args, config_class=ExperimentConfig, preset_fn=preset,
                                  short_flags=_SHORT_FLAGS, extra_values=extra)
    try:
        Limits.from_env().check(cfg)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    return cfg


def points_from_args(args: argparse.Namespace, cfg: ExperimentConfig):
    if cfg.data.dataset != "custom":
        if args.points is not None:
            raise UsageError("--points is only used with --dataset custom")
        return None
    if args.points is None:
        raise UsageError("dataset 'custom' needs --points FILE.csv")
    notes: list[str] = []
    try:
        points = load_points(args.points, max_points=Limits.from_env().max_upload_points, notes=notes)
    except PointSetError as err:
        raise UsageError(f"{args.points}: {err}") from None
    for note in notes:
        print(f"{args.points}: {note}", file=sys.stderr)
    return points
