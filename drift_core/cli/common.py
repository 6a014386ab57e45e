"""Arguments shared by the commands (a preset plus typed overrides of any config field, comma-separated
lists), one-line argument errors, the output folder, and the metrics log that is rewritten atomically."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import MAX_JSON_CHARS, METHODS, PRESETS, ConfigError, ExperimentConfig, SectionedConfig, preset
from ..data.points import PointSetError, load_points
from ..export import read_csv, write_csv
from ..limits import Limits
from . import UsageError

COMMON_FIELDS = ("dataset", "method", "K", "tau", "batch_size", "lr", "steps", "seed", "device")
"""Config fields with a flag of their own (``--batch-size`` for batch_size); --set NAME=VALUE reaches every field."""

_ARG_TYPES = {"int": int, "float": float, "str": str}
METHOD_MEANING = "baseline or lookahead: another way to say K (baseline: K = 0; lookahead: K of at least 1)"


def add_command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """``sub.add_parser(name, **kwargs)`` whose argument errors are one line on stderr ("error: argument
    --seeds: expected comma-separated integers, got 'a,b'") with exit status 2, like every other bad
    argument of the CLI (argparse's own error() prints the whole usage first)."""
    parser = sub.add_parser(name, **kwargs)

    def one_line_error(message: str):
        parser.exit(2, f"error: {message} (see python -m drift_core {name} --help)\n")

    parser.error = one_line_error  # argparse reports every parse error through self.error(message)
    return parser


# ---- argument types: argparse calls them; a ValueError or ArgumentTypeError is a one-line error --------
def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def int_list(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2] (at least one integer)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        values = [int(item) for item in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {_shown(text)}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def float_list(text: str) -> list[float]:
    """``"0.5,1"`` -> [0.5, 1.0] (at least one finite number)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        values = [float(item) for item in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {_shown(text)}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected at least one finite number, got {_shown(text)}")
    return values


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi] (no upper bound when ``hi`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {_shown(text)}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"expected an integer from {lo:,}"
                + (f" to {hi:,}" if hi is not None else " up")
                + f", got {_shown(text)}"
            )
        return value

    return parse


def name_value(text: str) -> tuple[str, str]:
    """``"tau=0.1"`` -> ("tau", "0.1")."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {_shown(text)}")
    return name.strip(), value


class _Setting(argparse.Action):
    """Stores one config override in ``namespace.settings`` ({field name: value}, in command-line
    order, so a later flag for the same field wins): ``--tau 0.1`` (the field is the action's
    ``const``) or ``--set tau=0.1`` (the value is a (name, value) pair)."""

    def __call__(self, parser, namespace, values, option_string=None):
        name, value = (self.const, values) if self.const is not None else values
        namespace.settings = {**(namespace.settings or {}), name: value}


# ---- presets and overrides -----------------------------------------------------------------------
def add_preset_arguments(
    parser: argparse.ArgumentParser,
    *,
    config_class: type[SectionedConfig],
    presets,
    default_preset: str,
    fields: Sequence[str],
    config_help: str,
) -> None:
    """--preset, --config, a typed flag for each of ``fields`` (``--batch-size`` for batch_size,
    typed like the field) and --set NAME=VALUE for any field; all overrides land in ``args.settings``."""
    types, meanings = config_class.field_types(), config_class.meanings()
    parser.set_defaults(settings={})
    parser.add_argument(
        "--preset",
        default=default_preset,
        choices=list(presets),
        metavar="PRESET",
        help=f"starting configuration: {', '.join(presets)}",
    )
    parser.add_argument("--config", type=Path, help=config_help)
    for name in fields:
        extra = {"choices": METHODS} if name == "method" else {"type": _ARG_TYPES[types[name]]}
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest="settings",
            action=_Setting,
            const=name,
            metavar=name.upper(),
            help=(meanings.get(name) or METHOD_MEANING).replace("%", "%%"),
            **extra,
        )
    parser.add_argument(
        "--set",
        dest="settings",
        action=_Setting,
        type=name_value,
        metavar="NAME=VALUE",
        help=f"set any field ({', '.join(types)}; what each means: python -m drift_core settings); repeatable",
    )


def read_config_file(path: Path) -> str:
    """The text of a --config file, or a UsageError saying why it cannot be read."""
    try:
        if not path.is_file():
            raise UsageError(f"no such config file: {path}")
        if path.stat().st_size > MAX_JSON_CHARS:
            raise UsageError(f"{path}: too large for a config file ({path.stat().st_size:,} bytes)")
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a config file (not UTF-8 JSON text)") from None


def config_from_preset_args(args: argparse.Namespace, *, config_class, preset_fn, extra_values: dict | None = None):
    """The config named by --config or --preset, with ``args.settings`` (the typed flags and --set, in
    command-line order), then ``extra_values`` applied (type-checked). Any problem is a UsageError."""
    try:
        cfg = (
            config_class.from_json(read_config_file(args.config)) if args.config is not None else preset_fn(args.preset)
        )
        return cfg.with_values({**args.settings, **(extra_values or {})})
    except ConfigError as err:
        raise UsageError(f"{args.config}: {err}" if args.config is not None else str(err)) from None


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    add_preset_arguments(
        parser,
        config_class=ExperimentConfig,
        presets=PRESETS,
        default_preset="playground",
        fields=COMMON_FIELDS,
        config_help="a config JSON (as written by 'train' or exported by the app)",
    )
    parser.add_argument("--points", type=Path, help="CSV of x,y rows for dataset 'custom'")


def server_limits() -> Limits:
    """This server's limits (``DRIFT_MAX_*``), or a UsageError naming the bad variable."""
    try:
        return Limits.from_env()
    except ConfigError as err:
        raise UsageError(str(err)) from None


def add_particles_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--particles``: particle mode (the field without the network; the config field ``mode``)."""
    parser.add_argument(
        "--particles",
        dest="particle_mode",  # not "particles": the sweep's --particles is a number of thumbnail points
        action="store_true",
        help=f"{what} in particle mode: the network's initial outputs moved by the field alone "
        "(z <- z + particle_step * V, no generator; same as --set mode=particles)",
    )


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    extra = {}
    if getattr(args, "points", None) is not None and "dataset" not in args.settings:
        extra["dataset"] = "custom"
    if getattr(args, "particle_mode", False):
        extra["mode"] = "particles"
    cfg = config_from_preset_args(args, config_class=ExperimentConfig, preset_fn=preset, extra_values=extra)
    try:
        server_limits().check(cfg)
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
        points = load_points(args.points, max_points=server_limits().max_upload_points, notes=notes)
    except PointSetError as err:
        raise UsageError(f"{args.points}: {err}") from None
    for note in notes:
        print(f"{args.points}: {note}", file=sys.stderr)
    return points


# ---- outputs ----------------------------------------------------------------------------------------
def output_folder(path: Path) -> Path:
    """``path`` created as a folder, or a UsageError saying why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--out {path} is a file, not a folder") from None
    except OSError as err:
        raise UsageError(f"cannot create the output folder {path}: {err.strerror or err}") from None
    return path


class MetricsLog:
    """A run's metrics CSV: rows kept in memory and the whole file rewritten atomically by
    :meth:`write` (at each checkpoint and at the end), so ``metrics.csv`` is always complete and never
    ahead of the checkpoint written after it. Resuming from step s keeps the existing file's rows up to
    step s (rows after it were trained after that checkpoint and are trained again)."""

    def __init__(self, path: Path, *, resume_step: int | None = None, columns: Sequence[str] | None = None):
        self.path, self.columns = path, columns
        self.rows: list[dict] = []
        if resume_step is not None and path.is_file():
            try:
                kept = [row for row in read_csv(path) if _row_step(row) is not None and _row_step(row) <= resume_step]
            except (OSError, csv.Error, UnicodeDecodeError) as err:
                print(f"warning: {path} is not readable ({err}); starting it afresh", file=sys.stderr)
                kept = []
            self.rows = kept

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def write(self) -> None:
        write_csv(self.path, self.rows, columns=self.columns)


def _row_step(row: dict) -> int | None:
    try:
        return int(row.get("step") or "")
    except ValueError:
        return None
