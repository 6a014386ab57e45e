"""``python -m drift_core settings``: every config field (the names that ``--set NAME=VALUE``, the app's
links and its widgets use) with its default and what it means, for the 2D runs or (``--images``) the
image runs. The texts are the config's own (:meth:`drift_core.config.SectionedConfig.meanings`), the
ones the app shows as tooltips."""

from __future__ import annotations

import argparse
import textwrap

from ..config import ExperimentConfig
from ..images.config import ImageExperimentConfig
from .common import add_command


def add_parser(sub) -> None:
    p = add_command(sub, "settings", help="list every config field with its default and meaning", description=__doc__)
    p.add_argument("--images", action="store_true", help="the image runs' fields (default: the 2D runs')")
    p.set_defaults(run=run)


def settings_text(config: ExperimentConfig | ImageExperimentConfig, width: int = 100) -> str:
    """One entry per field: ``name = default``, then its meaning indented below it."""
    defaults = config.to_flat()
    entries = []
    for name, meaning in type(config).meanings().items():
        body = textwrap.fill(meaning, width, initial_indent="    ", subsequent_indent="    ")
        entries.append(f"{name} = {defaults[name]!r}\n{body}")
    return "\n".join(entries)


def run(args: argparse.Namespace) -> int:
    print(settings_text(ImageExperimentConfig() if args.images else ExperimentConfig()))
    return 0
