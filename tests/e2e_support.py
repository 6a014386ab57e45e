"""Helpers for browser tests that need their own Streamlit server (a different environment from the
shared ``app_url`` fixture of ``tests/test_e2e_browser.py``, e.g. a fresh ``DRIFT_CACHE_DIR``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(log_path: Path, env: dict[str, str] | None = None, health_timeout_s: float = 120) -> Iterator[str]:
    """Start ``streamlit run app.py`` headless on a free port with ``env`` added to the environment,
    its output in ``log_path``; yield its URL once ``/_stcore/health`` answers; stop it afterwards."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + health_timeout_s
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited with status {proc.returncode} before becoming healthy")
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                        if r.read().decode().strip() == "ok":
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    pytest.fail(f"streamlit did not answer /_stcore/health within {health_timeout_s:.0f} s")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
