"""Random point sets for the drift-field tests (test_drift.py, test_drift_kernel.py, test_lookahead.py,
test_loss.py), drawn from the test's generator in float64."""

from __future__ import annotations

import torch


def _rand(g, n, d, shift=0.0, scale=1.0, dtype=torch.float64):
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift).to(dtype)


def _data(g, n=40, d=2):
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * 0.3
    y = torch.randn(n + 5, d, generator=g, dtype=torch.float64) * 0.3 + 0.5
    return x, y
