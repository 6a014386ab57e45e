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
import contextlib
import importlib.util
import os
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running app server: its address and its process."""

    url: str
    process: subprocess.Popen


@contextlib.contextmanager
def headless_server(
    *flags: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    health_timeout_s: float = 120.0,
) -> Iterator[Server]:
    """Run the app headless on 127.0.0.1 (``port``, or a free one) with more ``streamlit run`` ``flags``
    and ``env`` added to the environment, its output in ``log_path`` (else discarded); yield the
    :class:`Server` once ``/_stcore/health`` answers, and stop it afterwards (terminate, then kill).
    For scripts, benchmarks and browser tests. Raises RuntimeError when the server exits or stays
    silent first (its log says why)."""
    folder = app_folder()
    port = free_port() if port is None else port
    command = streamlit_command(
        ["--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port)]
        + ["--browser.gatherUsageStats", "false", *flags]
    )
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(open(log_path, "w"))
        else:
            out = subprocess.DEVNULL
        process = subprocess.Popen(
            command,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": path, **(env or {})},
        )
        server = Server(f"http://127.0.0.1:{port}", process)
        try:
            _wait_healthy(server, health_timeout_s, log_path)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)


def _wait_healthy(server: Server, timeout_s: float, log_path: Path | None) -> None:
    where = f"; see {log_path}" if log_path is not None else ""
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {server.process.returncode} before answering{where}")
        try:
            with urllib.request.urlopen(server.url + "/_stcore/health", timeout=2) as reply:
                if reply.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout_s:.0f} s{where}")
        time.sleep(0.5)


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
