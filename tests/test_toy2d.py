"""The toy 2D samplers (drift_core.data.toy2d): seeded, shaped, and where their names say."""

from __future__ import annotations

import pytest
import torch

from drift_core.data.toy2d import SAMPLERS, sample


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_are_seeded_and_shaped(name):
    a = sample(name, 300, generator=torch.Generator().manual_seed(5))
    b = sample(name, 300, generator=torch.Generator().manual_seed(5))
    assert a.shape == (300, 2) and a.dtype == torch.float32 and torch.equal(a, b)
    assert torch.isfinite(a).all() and a.abs().max() < 3


def test_checkerboard_occupies_eight_cells():
    pts = sample("checkerboard", 4000, generator=torch.Generator().manual_seed(0))
    cells = {(int(i), int(j)) for i, j in torch.floor((pts.clamp(-0.999, 0.999) + 1) * 2).tolist()}
    assert len(cells) >= 8
    inside = (torch.floor((pts + 1) * 2).long().sum(1) % 2 == 0).float().mean()
    assert inside > 0.8
