"""Command line: ``python -m drift_core COMMAND ...``.

Each command lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``;
:data:`COMMAND_MODULES` lists them. Bad arguments exit with status 2 and a one-line message.
"""
from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "COMMAND_MODULES", "UsageError"]

COMMAND_MODULES = (
    "drift_core.cli.train2d",
    "drift_core.cli.compare",
    "drift_core.cli.sweep",
    "drift_core.cli.images",
)


class UsageError(Exception):
    """A bad argument or input file: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drift_core", description="Drift Lab: train drifting models headless.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
