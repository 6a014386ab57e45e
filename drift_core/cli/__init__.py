"""Command line: ``drift-lab COMMAND ...`` (the installed console command) or ``python -m drift_core COMMAND ...``.

Each command lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``;
:data:`COMMAND_MODULES` lists them. A command that passes further arguments on (``app`` hands them to
``streamlit run``) sets ``accepts_extra_arguments`` and finds them in ``args.extra_arguments``. Bad
arguments exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["main", "console_main", "COMMAND_MODULES", "UsageError", "DISTRIBUTION"]

COMMAND_MODULES = (
    "drift_core.cli.train2d",
    "drift_core.cli.compare",
    "drift_core.cli.sweep",
    "drift_core.cli.images",
    "drift_core.cli.app",
    "drift_core.cli.settings",
)

DISTRIBUTION = "drift-lab"
"""The name Drift Lab is installed under (pyproject.toml)."""


class UsageError(Exception):
    """A bad argument or input file: printed as one line, exit status 2."""


def installed_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "not installed (running from a checkout)"


def build_parser(prog: str = "python -m drift_core") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Drift Lab: train drifting models headless, run sweeps, start the app."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None, *, prog: str = "python -m drift_core") -> int:
    parser = build_parser(prog)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_arguments = extra
    try:
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console_main() -> int:
    """The ``drift-lab`` console command (pyproject.toml's ``[project.scripts]``)."""
    return main(prog="drift-lab")
