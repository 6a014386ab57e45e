"""Headless pictures (drift_core.render) from degenerate inputs: zero-width spreads, NaN, huge values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from drift_core.render import heatmap_image, scatter_image


@pytest.mark.parametrize(
    "points, bounds",
    [
        (np.zeros((5, 2)), None),  # every point equal: zero-width spread
        (np.zeros((5, 2)), (0.0, 0.0, 0.0, 0.0)),  # zero-width box
        (np.zeros((5, 2)), (float("nan"), 1.0, 0.0, 1.0)),
        (np.full((3, 2), np.nan), None),  # a diverged sample (was: ValueError from min() of nothing)
        (np.zeros((0, 2)), None),
        (np.array([[1e308, -1e308], [0.0, 0.0]]), None),  # a spread beyond float range
        (np.array([[0.0, 0.0], [1.0, 1.0]]), (-1e308, 1e308, 0.0, 1.0)),
    ],
)
def test_scatter_draws_degenerate_samples_without_warnings(points, bounds):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = scatter_image([(points, (31, 119, 180))], bounds=bounds, size=64)
    assert image.size == (64, 64)


def test_scatter_puts_a_single_point_in_the_middle():
    image = np.asarray(scatter_image([(np.array([[3.0, -2.0]]), (255, 0, 0))], size=65, radius=2))
    assert tuple(image[32, 32]) == (255, 0, 0)


def test_heatmap_of_values_spanning_beyond_float_range_is_drawn():
    image = heatmap_image(
        np.array([[1e308, -1e308], [np.nan, 0.0]]), ["a", "b"], ["c", "d"]
    )  # was: ValueError (NaN colour)
    assert image.size[0] > 0
