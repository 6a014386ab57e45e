"""Lookahead terms (drift_core.lookahead): K = 0 is the baseline bit for bit, the terms, weights and
scalings, and exactly K + 1 drift passes."""

from __future__ import annotations

import pytest
import torch

import drift_core.lookahead as lookahead_module
from drift_core.drift import drifting_field
from drift_core.lookahead import lookahead_field, lookahead_weights
from tests.drift_support import _data, _rand


@pytest.mark.parametrize("weighting", ["uniform", "heun", "geometric", "extrapolation"])
@pytest.mark.parametrize("tau", [0.1, (0.05, 0.2)])
def test_k0_equals_baseline_exactly(gen, weighting, tau):
    x, y = _data(gen)
    base = drifting_field(x, y, tau=tau)
    la = lookahead_field(x, y, K=0, tau=tau, weighting=weighting)
    assert torch.equal(la.v, base.v)
    assert len(la.terms) == 1 and len(la.points) == 1


@pytest.mark.parametrize("kernel", ["laplace", "gaussian"])
@pytest.mark.parametrize("affinity_floor", [None, 1e-6])
@pytest.mark.parametrize("scaling", ["none", "relative"])
def test_k0_equals_baseline_bit_for_bit_for_every_kernel(gen, kernel, affinity_floor, scaling):
    x, y = _data(gen)
    opts = dict(tau=(0.05, 0.2), kernel=kernel, affinity_floor=affinity_floor, normalize_distance=True)
    base = drifting_field(x, y, **opts)
    la = lookahead_field(x, y, K=0, scaling=scaling, **opts)
    assert torch.equal(la.v, base.v) and torch.equal(la.raw_rms[0], base.v.square().mean().sqrt())


def test_k1_uniform_alpha1_no_scaling_ends_at_z2(gen):
    x, y = _data(gen)
    la = lookahead_field(x, y, K=1, tau=0.2)
    z1 = x + drifting_field(x, y, tau=0.2).v
    z2 = z1 + drifting_field(z1, y, tau=0.2).v
    torch.testing.assert_close(la.points[1], z1)
    torch.testing.assert_close(x + la.v, z2)


def test_fixed_negatives_use_original_set(gen):
    x, y = _data(gen)
    la = lookahead_field(x, y, K=1, tau=0.2, negatives="fixed")
    z1 = x + drifting_field(x, y, tau=0.2).v
    v1 = drifting_field(z1, y, x, tau=0.2, mask_diagonal=True).v
    torch.testing.assert_close(la.terms[1], v1)


def test_scalings(gen):
    x, y = _data(gen)
    unit = lookahead_field(x, y, K=2, tau=0.2, scaling="unit_rms")
    for t in unit.terms:
        assert abs(float(t.square().mean().sqrt()) - 1.0) < 1e-9
    rel = lookahead_field(x, y, K=2, tau=0.2, scaling="relative")
    r0 = rel.terms[0].square().mean().sqrt()
    for t in rel.terms[1:]:
        torch.testing.assert_close(t.square().mean().sqrt(), r0)


def test_weights():
    assert lookahead_weights(1, "heun") == (0.5, 0.5)
    assert lookahead_weights(2, "geometric", gamma=0.5) == (1.0, 0.5, 0.25)
    assert lookahead_weights(1, "extrapolation", lam=0.3) == (-0.3, 1.3)
    assert lookahead_weights(3, "uniform") == (1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        lookahead_weights(1, "nope")


def test_equilibrium_terms_vanish_when_positives_are_the_generated_set(gen):
    """With y_pos identical to x (and y_neg = x masked) every term is small; with the same set as
    explicit negatives V is exactly 0 and so is every later term."""
    x, _ = _data(gen)
    la = lookahead_field(x, x.clone(), K=3, tau=0.3, negatives="fixed")
    # fixed negatives = x, positives = x: pos and neg sets equal up to the masked pairs
    assert float(la.v.abs().max()) < float(lookahead_field(x, x + 1.0, K=3, tau=0.3).v.abs().max())


def test_lookahead_costs_exactly_k_plus_1_drift_passes(gen, monkeypatch):
    calls = []
    original = lookahead_module.drifting_field
    monkeypatch.setattr(lookahead_module, "drifting_field", lambda *a, **k: calls.append(1) or original(*a, **k))
    x, y = _rand(gen, 30, 2), _rand(gen, 30, 2, shift=0.5)
    for K in (0, 1, 4):
        calls.clear()
        lookahead_field(x, y, K=K, tau=0.1, scaling="relative")
        assert len(calls) == K + 1
