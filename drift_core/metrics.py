"""Distances between a generated 2D sample and a reference sample (pure functions of tensors).

* energy distance  2E||X-Y|| - E||X-X'|| - E||Y-Y'||  (V-statistic; 0 iff the empirical laws match)
* multi-bandwidth Gaussian MMD^2 (unbiased), bandwidths relative to the median distance
* sliced Wasserstein-2 with evenly spaced deterministic angles (no seed needed)
* exact W2 with POT's network simplex (``numItermax`` large, so it reaches optimality)
* mode coverage and high-quality fraction for Gaussian mixtures (the Unrolled-GAN / VEEGAN convention)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "energy_distance",
    "mmd2",
    "sliced_wasserstein",
    "wasserstein2",
    "ModeCoverage",
    "mode_coverage",
    "evaluate",
    "ReferenceSample",
]


def _dist(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(a.double(), b.double(), compute_mode="donot_use_mm_for_euclid_dist")


def _need(x: Tensor, y: Tensor, at_least: int, what: str) -> None:
    """Raise ValueError unless x [N, D] and y [M, D] have at least ``at_least`` rows each and the same D."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"{what} needs two samples [N, D] and [M, D], got {list(x.shape)} and {list(y.shape)}")
    if min(x.shape[0], y.shape[0]) < at_least:
        raise ValueError(f"{what} needs at least {at_least} point(s) in each sample, got {x.shape[0]} and {y.shape[0]}")


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance between samples x [N, D] and y [M, D] (V-statistic; N, M >= 1)."""
    _need(x, y, 1, "energy distance")
    return float(2 * _dist(x, y).mean() - _dist(x, x).mean() - _dist(y, y).mean())


@dataclass(frozen=True)
class ReferenceSample:
    """A fixed reference sample y [M, 2] with what the energy distance and the sliced W2 need of it alone,
    computed once: the mean distance between its points, and its sorted projections on the
    ``n_angles`` directions. A run measures its outputs against the same sample again and again (the
    app twice a second), so :meth:`energy_distance` and :meth:`sliced_wasserstein` equal the functions
    of the same names on (x, y) while computing only the terms that involve x."""

    points: Tensor  # [M, 2] float64
    self_distance: float  # mean ‖y_i - y_j‖ over all pairs (the V-statistic's y-y term)
    projections: Tensor  # [M, n_angles]: each direction's projections of y, sorted
    directions: Tensor  # [n_angles, 2]

    @classmethod
    def of(cls, y: Tensor, n_angles: int) -> ReferenceSample:
        if y.ndim != 2 or y.shape[1] != 2 or y.shape[0] < 1:
            raise ValueError(f"a reference sample is [M, 2] with M >= 1, got {list(y.shape)}")
        if n_angles < 1:
            raise ValueError(f"sliced W2 needs at least one angle, got n_angles={n_angles}")
        points = y.double()
        theta = torch.arange(n_angles, dtype=torch.float64) * (math.pi / n_angles)
        directions = torch.stack([theta.cos(), theta.sin()], 1)
        projections = torch.sort(points @ directions.T, dim=0).values
        return cls(points, float(_dist(points, points).mean()), projections, directions)

    def energy_distance(self, x: Tensor) -> float:
        """:func:`energy_distance` (x, the reference)."""
        _need(x, self.points, 1, "energy distance")
        return float(2 * _dist(x, self.points).mean() - _dist(x, x).mean() - self.self_distance)

    def sliced_wasserstein(self, x: Tensor) -> float:
        """:func:`sliced_wasserstein` (x, the reference, n_angles)."""
        _need(x, self.points, 1, "sliced W2")
        px, py = torch.sort(x.double() @ self.directions.T, dim=0).values, self.projections
        if px.shape[0] != py.shape[0]:
            q = torch.linspace(0, 1, max(px.shape[0], py.shape[0]), dtype=torch.float64)
            px, py = torch.quantile(px, q, dim=0), torch.quantile(py, q, dim=0)
        return float(((px - py) ** 2).mean().sqrt())


def mmd2(x: Tensor, y: Tensor, bandwidths: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0)) -> float:
    """Unbiased MMD^2 with a sum of Gaussian kernels exp(-d^2 / (2 (b * m)^2)), m = median pooled distance
    (N, M >= 2: the unbiased estimate leaves out the diagonal; bandwidths > 0)."""
    _need(x, y, 2, "MMD^2")
    if not bandwidths or min(bandwidths) <= 0:
        raise ValueError(f"MMD^2 needs positive bandwidths, got {bandwidths}")
    dxx, dyy, dxy = _dist(x, x) ** 2, _dist(y, y) ** 2, _dist(x, y) ** 2
    pooled = torch.cat([dxy.flatten(), dxx.flatten()])
    median = float(pooled.median().sqrt()) or 1.0
    n, m = x.shape[0], y.shape[0]
    total = 0.0
    for b in bandwidths:
        gamma = 1.0 / (2 * (b * median) ** 2)
        kxx, kyy, kxy = (-gamma * dxx).exp(), (-gamma * dyy).exp(), (-gamma * dxy).exp()
        total += float(
            (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
            - 2 * kxy.mean()
        )
    return total


def sliced_wasserstein(x: Tensor, y: Tensor, n_angles: int = 256) -> float:
    """Sliced W2 over ``n_angles`` evenly spaced directions theta_k = pi k / n_angles (2D only).
    Unequal sample sizes are compared through quantiles."""
    _need(x, y, 1, "sliced W2")
    if x.shape[1] != 2 or y.shape[1] != 2:
        raise ValueError("sliced_wasserstein with deterministic angles is defined for 2D samples")
    if n_angles < 1:
        raise ValueError(f"sliced W2 needs at least one angle, got n_angles={n_angles}")
    theta = torch.arange(n_angles, dtype=torch.float64) * (math.pi / n_angles)
    directions = torch.stack([theta.cos(), theta.sin()], 1)
    px = torch.sort(x.double() @ directions.T, dim=0).values
    py = torch.sort(y.double() @ directions.T, dim=0).values
    if px.shape[0] != py.shape[0]:
        q = torch.linspace(0, 1, max(px.shape[0], py.shape[0]), dtype=torch.float64)
        px, py = torch.quantile(px, q, dim=0), torch.quantile(py, q, dim=0)
    return float(((px - py) ** 2).mean().sqrt())


def wasserstein2(x: Tensor, y: Tensor, num_iter_max: int = 10_000_000) -> float:
    """Exact W2 between the empirical measures (uniform weights) with POT's ``emd2`` (N, M >= 1)."""
    import ot  # POT is imported on use: only exact W2 needs it

    _need(x, y, 1, "exact W2")
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    cost = ot.dist(x.double().numpy(), y.double().numpy())  # squared Euclidean
    return float(math.sqrt(max(ot.emd2(a, b, cost, numItermax=num_iter_max), 0.0)))


@dataclass(frozen=True)
class ModeCoverage:
    covered: int  # modes holding at least ``min_count`` high-quality samples
    total: int
    high_quality: float  # fraction of samples within 3 sigma of their nearest mode
    kl_to_uniform: float  # KL(mode histogram of high-quality samples || uniform)


def mode_coverage(x: Tensor, modes: Tensor, sigma: float, min_fraction: float = 0.25) -> ModeCoverage:
    """Assign each sample to its nearest mode; "high quality" = within 3 sigma of it; a mode is covered
    when it holds at least ``min_fraction`` of its fair share (N / k) of high-quality samples
    (N >= 1 samples, k >= 1 modes)."""
    _need(x, modes, 1, "mode coverage")
    d = _dist(x, modes)
    nearest, index = d.min(1)
    good = nearest <= 3 * sigma
    counts = torch.bincount(index[good], minlength=modes.shape[0]).double()
    k = modes.shape[0]
    covered = int((counts >= min_fraction * x.shape[0] / k).sum())
    total_good = counts.sum()
    if total_good > 0:
        p = counts / total_good
        nz = p > 0
        kl = float((p[nz] * (p[nz] * k).log()).sum())
    else:
        kl = math.inf
    return ModeCoverage(covered, k, float(good.double().mean()), kl)


def evaluate(
    generated: Tensor,
    reference: Tensor,
    *,
    modes: Tensor | None = None,
    sigma: float | None = None,
    exact_w2: bool = False,
) -> dict[str, float]:
    """All 2D metrics as a dict (W2 only when ``exact_w2``: it costs seconds at N = 2k-4k)."""
    out = {
        "energy": energy_distance(generated, reference),
        "mmd2": mmd2(generated, reference),
        "sliced_w2": sliced_wasserstein(generated, reference),
    }
    if exact_w2:
        out["w2"] = wasserstein2(generated, reference)
    if modes is not None and sigma is not None:
        cov = mode_coverage(generated, modes, sigma)
        out["modes_covered"] = float(cov.covered)
        out["high_quality"] = cov.high_quality
    return out
