"""The one square box every picture of Drift Lab is drawn in (the app's views, the exports, the
command line's PNGs): the points' extent, widened by a margin, made square so distances look the same
both ways, and safe for what a run can produce (no finite point, spans beyond float range)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["square_bounds"]

DEFAULT = (-1.5, 1.5, -1.5, 1.5)
"""The box when there is no finite point to go by."""


def square_bounds(
    samples: Iterable[np.ndarray],
    *,
    margin: float,
    quantiles: tuple[float, float] = (0.0, 1.0),
    min_span: float = 1e-6,
) -> tuple[float, float, float, float]:
    """A square box (xmin, xmax, ymin, ymax) around the finite points of ``samples`` (arrays [n, 2]).

    Per axis the extent is from the ``quantiles[0]`` to the ``quantiles[1]`` quantile of the points (the
    full range by default; e.g. (0.005, 0.995) keeps a few stray points from shrinking the rest), the
    side is the larger extent times ``1 + 2 * margin`` (at least ``min_span``, at most 1e300), and the box
    is centred on the extent's middle (0 when that is not finite)."""
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in samples]
    points = np.concatenate(arrays) if arrays else np.zeros((0, 2))
    points = points[np.isfinite(points).all(1)]
    if len(points) == 0:
        return DEFAULT
    if quantiles == (0.0, 1.0):
        lo, hi = points.min(0), points.max(0)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # spans beyond float range interpolate to inf
            lo, hi = np.quantile(points, quantiles[0], axis=0), np.quantile(points, quantiles[1], axis=0)
    mid_x, mid_y = lo[0] / 2 + hi[0] / 2, lo[1] / 2 + hi[1] / 2  # halves first: no overflow
    if not (math.isfinite(mid_x) and math.isfinite(mid_y)):
        mid_x = mid_y = 0.0
    half_extent = max(float(hi[0] / 2 - lo[0] / 2), float(hi[1] / 2 - lo[1] / 2))  # halves first: no overflow
    span = half_extent * 2 * (1 + 2 * margin) if half_extent < 1e300 else math.inf
    span = 1.0 if math.isnan(span) else min(max(span, min_span), 1e300)
    return (mid_x - span / 2, mid_x + span / 2, mid_y - span / 2, mid_y + span / 2)
