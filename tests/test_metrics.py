"""2D metrics (drift_core.metrics) against independent computations, their refusal of degenerate samples,
and the measured reference sample."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from drift_core.data.toy2d import mixture_modes, sample
from drift_core.metrics import energy_distance, mmd2, mode_coverage, sliced_wasserstein, wasserstein2


def test_metrics_against_independent_computations():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 2, generator=g), torch.randn(280, 2, generator=g) + 0.5
    # energy distance vs a direct double loop over a subset
    xs, ys = x[:30].double(), y[:25].double()

    def mean_d(a, b):
        return sum(float((ai - bj).norm()) for ai in a for bj in b) / (len(a) * len(b))

    assert math.isclose(energy_distance(xs, ys), 2 * mean_d(xs, ys) - mean_d(xs, xs) - mean_d(ys, ys), rel_tol=1e-9)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert mmd2(x, y) > mmd2(x[:150], x[150:])
    # sliced W2 of a pure translation by t along the diagonal: average of (t.u)^2 over u = |t|^2/2
    t = torch.tensor([0.3, 0.4])
    assert sliced_wasserstein(x, x + t, n_angles=1024) == pytest.approx(math.sqrt(0.25 / 2), rel=1e-3)
    # exact W2 of a translation is |t|
    assert wasserstein2(x[:200], x[:200] + t) == pytest.approx(0.5, rel=1e-6)


def test_mode_coverage():
    modes = mixture_modes("8gaussians")
    g = torch.Generator().manual_seed(0)
    full = sample("8gaussians", 2000, generator=g)
    cov = mode_coverage(full, modes, 0.05)
    assert cov.covered == 8 and cov.high_quality > 0.95
    half = modes[:4][torch.randint(0, 4, (2000,), generator=g)]
    assert mode_coverage(half, modes, 0.05).covered == 4


def test_metrics_refuse_degenerate_samples_with_a_value_error():
    """Empty samples, one-point samples for the unbiased MMD, zero angles and no modes were a
    ZeroDivisionError ("float division by zero" in exact W2, sliced W2), an IndexError or a silent NaN."""
    from drift_core.metrics import energy_distance, mmd2, mode_coverage, sliced_wasserstein, wasserstein2

    two, none = torch.randn(2, 2), torch.zeros(0, 2)
    cases = [
        (lambda: wasserstein2(none, two), "at least 1 point"),
        (lambda: energy_distance(two, none), "at least 1 point"),
        (lambda: sliced_wasserstein(none, two), "at least 1 point"),
        (lambda: sliced_wasserstein(two, two, 0), "at least one angle"),
        (lambda: mmd2(two[:1], two), "at least 2 point"),
        (lambda: mmd2(two, two, bandwidths=(0.0,)), "positive bandwidths"),
        (lambda: mode_coverage(two, none, 0.1), "at least 1 point"),
        (lambda: energy_distance(two, torch.zeros(2, 3)), "same|\\[N, D\\]"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError, match=words):
            call()
    same = torch.zeros(3, 2)  # a zero-width spread is fine: every distance is 0
    assert (
        energy_distance(same, same) == 0.0 and sliced_wasserstein(same, same) == 0.0 and wasserstein2(same, same) == 0.0
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(1, 40), st.integers(0, 2**16))
def test_a_measured_reference_sample_gives_the_same_metrics(n, m, angles, seed):
    """ReferenceSample computes the reference's own terms once; the results equal the plain functions."""
    from drift_core.metrics import ReferenceSample

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 2, generator=g), torch.randn(m, 2, generator=g) * 0.5 + 0.3
    measured = ReferenceSample.of(y, angles)
    assert measured.energy_distance(x) == pytest.approx(energy_distance(x, y), rel=1e-12, abs=1e-12)
    assert measured.sliced_wasserstein(x) == pytest.approx(sliced_wasserstein(x, y, angles), rel=1e-12, abs=1e-12)
