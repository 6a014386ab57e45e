"""Shared fixtures. torch is imported here so every AppTest starts warm."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _fresh_session_registry():
    """Each test starts with an empty registry of live app sessions (drift_views.registry,
    DRIFT_MAX_SESSIONS): AppTests in one process would otherwise count as concurrent users of one server."""
    from drift_views.registry import set_shared_registry

    set_shared_registry(None)
    yield


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
