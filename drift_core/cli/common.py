"""Arguments shared by the 2D commands: a preset plus typed overrides of any config field."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import ConfigError, ExperimentConfig, Limits, flat_field_names, preset, PRESETS
from ..data.points import PointSetError, load_points
from . import UsageError

_SHORT_FLAGS = {
    "dataset": "--dataset", "method": "--method", "K": "--K", "tau": "--tau", "batch_size": "--batch-size",
    "lr": "--lr", "steps": "--steps", "seed": "--seed", "device": "--device",
}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="playground", help=f"starting configuration: {', '.join(PRESETS)}")
    parser.add_argument("--config", type=Path, help="a config JSON (as written by 'train' or exported by the app)")
    for name, flag in _SHORT_FLAGS.items():
        parser.add_argument(flag, dest=f"cfg_{name}", default=None, metavar=name.upper(), help=f"override {name}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help=f"override any field ({', '.join(flat_field_names())}); repeatable")
    parser.add_argument("--points", type=Path, help="CSV of x,y rows for dataset 'custom'")


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    try:
        if args.config is not None:
            if not args.config.is_file():
                raise UsageError(f"no such config file: {args.config}")
            cfg = ExperimentConfig.from_json(args.config.read_text())
        else:
            cfg = preset(args.preset)
        values = {name: getattr(args, f"cfg_{name}") for name in _SHORT_FLAGS if getattr(args, f"cfg_{name}") is not None}
        for item in args.overrides:
            if "=" not in item:
                raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
            key, value = item.split("=", 1)
            values[key.strip()] = value
        if getattr(args, "points", None) is not None and "dataset" not in values:
            values["dataset"] = "custom"
        cfg = cfg.with_values(values)
        Limits.from_env().check(cfg)
        return cfg
    except ConfigError as err:
        raise UsageError(str(err)) from None


def points_from_args(args: argparse.Namespace, cfg: ExperimentConfig):
    if cfg.data.dataset != "custom":
        if args.points is not None:
            raise UsageError("--points is only used with --dataset custom")
        return None
    if args.points is None:
        raise UsageError("dataset 'custom' needs --points FILE.csv")
    try:
        return load_points(args.points)
    except PointSetError as err:
        raise UsageError(f"{args.points}: {err}") from None
