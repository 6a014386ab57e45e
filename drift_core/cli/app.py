"""``drift-lab app``: start the Streamlit app, from any directory.

The app's files (``app.py``, ``pages/``, ``ui/`` and ``.streamlit/config.toml``) are found in the
checkout this ``drift_core`` was imported from (a clone, ``pip install -e``) or in the installed
``drift_lab_app`` package (``pip install``). The app's own ``.streamlit/config.toml`` is passed as
command-line flags (``--server.fileWatcherType none``: Streamlit's file watcher trips over torch; static
file serving for the live views; ...), so they hold whatever directory the app is started from. Every
other argument goes to ``streamlit run`` after them, e.g. ``drift-lab app --server.port 8502``. The
command then becomes ``python -m streamlit run ...`` (``os.execv``; a child process where there is no
exec): nothing of Streamlit is imported into ``drift_core``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from . import UsageError

APP_PACKAGE = "drift_lab_app"
"""The installed package that holds app.py, pages/ and .streamlit/config.toml (see pyproject.toml)."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "app",
        help="start the Streamlit app (more arguments go to 'streamlit run')",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--print-command", action="store_true", help="print the command instead of running it")
    p.set_defaults(run=run, accepts_extra_arguments=True)


def app_folder() -> Path:
    """The folder with ``app.py``, ``pages/`` and ``.streamlit/`` that belongs to this ``drift_core``: the
    checkout it was imported from (a clone, an editable install), else the installed app package. A
    UsageError when neither has them."""
    candidates = [Path(__file__).resolve().parents[2]]
    spec = importlib.util.find_spec(APP_PACKAGE)
    if spec is not None:
        candidates += [Path(p) for p in spec.submodule_search_locations or []]
    for folder in candidates:
        if (folder / "app.py").is_file() and (folder / "pages").is_dir():
            return folder
    raise UsageError(
        "cannot find the Drift Lab app (app.py and pages/): reinstall drift-lab "
        f"(looked in {', '.join(str(c) for c in candidates)})"
    )


def config_flags(folder: Path) -> list[str]:
    """The options of ``folder/.streamlit/config.toml`` as ``streamlit run`` flags
    (``--section.option value``); none when there is no such file."""
    path = folder / ".streamlit" / "config.toml"
    if not path.is_file():
        return []
    flags = []
    for section, options in tomllib.loads(path.read_text()).items():
        for name, value in options.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags += [f"--{section}.{name}", text]
    return flags


def streamlit_command(extra: list[str]) -> list[str]:
    """``python -m streamlit run <app.py> <the app's config as flags> <extra>`` (later flags win)."""
    folder = app_folder()
    return [sys.executable, "-m", "streamlit", "run", str(folder / "app.py"), *config_flags(folder), *extra]


def run(args: argparse.Namespace) -> int:
    command = streamlit_command(list(args.extra_arguments))
    if args.print_command:
        print(shlex.join(command))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        # become Streamlit: Ctrl-C, a service manager's SIGTERM or a test's kill reach the server itself,
        # and no wrapper process is left behind
        os.execv(command[0], command)
    return subprocess.call(command)
