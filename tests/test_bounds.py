"""drift_core.bounds.square_bounds: the one square box every picture is drawn in."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from drift_core.bounds import DEFAULT, square_bounds

finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.just(2)), elements=finite), st.floats(0, 1))
def test_the_box_is_square_holds_every_point_and_keeps_its_margin(points, margin):
    x0, x1, y0, y1 = square_bounds([points], margin=margin)
    assert np.isclose(x1 - x0, y1 - y0)
    assert (points[:, 0] >= x0 - 1e-9).all() and (points[:, 0] <= x1 + 1e-9).all()
    assert (points[:, 1] >= y0 - 1e-9).all() and (points[:, 1] <= y1 + 1e-9).all()
    extent = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))
    assert np.isclose(x1 - x0, max(extent * (1 + 2 * margin), 1e-6), rtol=1e-9)


def test_stray_points_do_not_shrink_the_box_and_nothing_finite_gives_the_default():
    cloud = np.random.default_rng(0).normal(size=(1000, 2))
    with_stray = np.vstack([cloud, [[1e4, 1e4]]])
    a, b = (
        square_bounds([cloud], margin=0.1, quantiles=(0.005, 0.995)),
        square_bounds([with_stray], margin=0.1, quantiles=(0.005, 0.995)),
    )
    assert abs((b[1] - b[0]) - (a[1] - a[0])) < 0.1  # one stray point out of a thousand changes little
    assert square_bounds([np.full((3, 2), np.nan)], margin=0.1) == DEFAULT
    assert square_bounds([], margin=0.1) == DEFAULT
    x0, x1, _, _ = square_bounds([np.array([[1e308, -1e308], [-1e308, 1e308]])], margin=0.1)
    assert np.isfinite([x0, x1]).all()  # a span beyond float range stays drawable
