"""Helpers for browser tests that need their own Streamlit server (a different environment from the
shared ``app_url`` fixture of ``tests/test_e2e_browser.py``, e.g. a fresh ``DRIFT_CACHE_DIR``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from drift_core.cli.app import free_port, headless_server

__all__ = ["free_port", "serve_app"]


@contextlib.contextmanager
def serve_app(log_path: Path, env: dict[str, str] | None = None, health_timeout_s: float = 120) -> Iterator[str]:
    """The app served headless (:func:`drift_core.cli.app.headless_server`) with ``env`` added and its
    output in ``log_path``; yields its URL."""
    with headless_server(env=env, log_path=log_path, health_timeout_s=health_timeout_s) as server:
        yield server.url
