"""The batched drift of many problems at once (drift_core/images/batched_drift.py): one problem is the
2D engine's field and lookahead, independent problems stay independent when nothing is shared, K = 0
is the base field bit for bit, V vanishes for p = q, and drift settings it does not implement are
refused rather than ignored."""

from __future__ import annotations

import pytest
import torch

import drift_core.images.batched_drift as bd
from drift_core.config import ConfigError, DriftConfig
from drift_core.drift import drifting_field
from drift_core.images.batched_drift import (
    batched_drifting_field,
    batched_lookahead_field,
    make_batched_drift_fn,
    unsupported_drift_settings,
)
from drift_core.images.config import ImageExperimentConfig
from drift_core.lookahead import lookahead_field

TAUS = (0.02, 0.05, 0.2)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 9, 6, generator=g, dtype=torch.float64)
    y = torch.randn(5, 7, 6, generator=g, dtype=torch.float64) + 0.4
    return x, y


@pytest.mark.parametrize(
    "options",
    [
        dict(K=0, tau=TAUS, normalize_distance=True),
        dict(K=1, tau=TAUS, normalize_distance=True, alpha=0.1),
        dict(K=2, tau=TAUS, normalize_distance=True, alpha=0.3, scaling="unit_rms", weighting="heun"),
        dict(K=1, tau=0.5, negatives="fixed", scaling="relative", weighting="extrapolation", lam=0.7),
        dict(K=1, tau=(0.1, 0.4), normalize_distance=True, attraction_only=True, weighting="geometric", gamma=0.3),
    ],
)
def test_one_problem_is_the_lookahead_field_of_the_2d_engine(data, options):
    x, y = data[0][0], data[1][0]
    expected = lookahead_field(x, y, **options)
    got = batched_lookahead_field(x[None], y[None], **options)
    assert got.v.shape == (1, *x.shape)
    torch.testing.assert_close(got.v[0], expected.v, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(got.raw_rms, expected.raw_rms, rtol=1e-8, atol=1e-12)
    for a, b in zip(got.fields, expected.fields):
        torch.testing.assert_close(a.raw_rms, b.raw_rms, rtol=1e-8, atol=1e-12)


def test_problems_are_independent_without_shared_normalisations(data):
    """One temperature, no distance or drift normalisation: nothing is shared, so problem b's field is
    the 2D field of problem b alone, and changing another problem's points leaves it unchanged."""
    x, y = data
    got = batched_drifting_field(x, y, tau=0.7)
    for b in range(x.shape[0]):
        torch.testing.assert_close(got.v[b], drifting_field(x[b], y[b], tau=0.7).v, rtol=1e-8, atol=1e-10)
    moved = y.clone()
    moved[0] += 5.0
    again = batched_drifting_field(x, moved, tau=0.7)
    assert torch.equal(again.v[1:], got.v[1:]) and not torch.allclose(again.v[0], got.v[0])


def test_normalisations_are_shared_by_all_problems(data):
    """The distance scale and each temperature's RMS are one number over all problems (official
    drift_loss): the batched field is the per-problem un-normalised fields, distances divided by the
    mean over all problems, each temperature divided by its RMS over all problems."""
    x, y = data
    got = batched_drifting_field(x, y, tau=TAUS, normalize_distance=True)
    scale = torch.cat([torch.cdist(x, y), torch.cdist(x, x)], 2).mean()
    fields = [[drifting_field(x[b] / scale, y[b] / scale, tau=t).v * scale for b in range(len(x))] for t in TAUS]
    expected = sum(torch.stack(f) / torch.stack(f).square().mean().sqrt() for f in fields)
    torch.testing.assert_close(got.v, expected, rtol=1e-9, atol=1e-12)


def test_k0_is_the_base_field_bit_for_bit(data):
    x, y = data
    base = batched_drifting_field(x, y, x, tau=TAUS, normalize_distance=True, mask_diagonal=True)
    for weighting in ("uniform", "geometric", "extrapolation"):
        for scaling in ("none", "relative"):
            k0 = batched_lookahead_field(
                x, y, K=0, tau=TAUS, normalize_distance=True, weighting=weighting, scaling=scaling
            )
            assert torch.equal(k0.v, base.v)


def test_field_vanishes_when_negatives_are_the_positives(data):
    x, y = data
    field = batched_drifting_field(x, y, y, tau=TAUS, normalize_drift=False, mask_diagonal=False)
    assert field.v.abs().max() < 1e-12
    with pytest.raises(ValueError, match=r"\[B, N, D\]"):
        batched_drifting_field(x[0], y[0], tau=0.1)


def test_drift_settings_the_batched_field_lacks_are_refused(monkeypatch):
    """A drift setting outside BATCHED_DRIFT_SETTINGS (here attraction_only, pretended new) must keep its
    default for per-location drift: the batched field refuses it and so does the image config."""
    assert unsupported_drift_settings(ImageExperimentConfig().drift) == []
    monkeypatch.setattr(bd, "BATCHED_DRIFT_SETTINGS", bd.BATCHED_DRIFT_SETTINGS - {"attraction_only"})
    odd = DriftConfig(attraction_only=True)
    assert unsupported_drift_settings(odd) == ["attraction_only"]
    with pytest.raises(ValueError, match="attraction_only"):
        make_batched_drift_fn(odd)
    config = ImageExperimentConfig().with_values({"attraction_only": True})  # fine while drifting per vector
    with pytest.raises(ConfigError, match="per-location drift does not implement attraction_only"):
        config.with_values({"per_location": True})
