"""A fixed 2D picture of one feature group: PCA fitted once on real features, applied to generated
features and, by its linear part alone, to the drift vectors, so the 2D particle picture carries over
to images.

    fit:              mu = mean of the real features R [m, D];  R - mu = U S W^T  (SVD, float64)
                      W_2 = the two right singular vectors with the largest singular values, [D, 2], each
                      signed so that its largest-magnitude loading is positive (a deterministic sign)
    project:          p(x) = (x - mu) W_2                  points  [n, D] -> [n, 2]
    project_vectors:  u(v) = v W_2                         vectors [n, D] -> [n, 2];  p(x + v) = p(x) + u(v)
    explained:        S_k^2 / sum S^2, the share of the real features' variance along each axis

The PCA is computed with ``torch.linalg.svd`` (deterministic, no randomised solver) rather than
scikit-learn, whose import costs seconds at the start of every command and page that trains images;
the tests check it against ``sklearn.decomposition.PCA``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["FeatureProjection", "FeatureView", "PlanarFeatureView"]


@dataclass(frozen=True)
class FeatureProjection:
    """PCA onto two axes (module docstring). ``mean`` [D] and ``components`` [2, D] (float32, CPU);
    ``explained`` the share of the fitted features' variance along each axis."""

    mean: Tensor
    components: Tensor
    explained: tuple[float, float]

    @classmethod
    def fit(cls, real: Tensor) -> FeatureProjection:
        """The projection fitted on ``real`` features [m, D] (m >= 1; with fewer than two directions of
        spread the missing axes are zero)."""
        if real.ndim != 2 or real.shape[0] < 1:
            raise ValueError(f"real features must be [m, D] with m >= 1, got {tuple(real.shape)}")
        data = real.detach().to("cpu", torch.float64)
        mean = data.mean(0)
        _, singular, vh = torch.linalg.svd(data - mean, full_matrices=False)
        axes = torch.zeros(2, data.shape[1], dtype=torch.float64)
        k = min(2, vh.shape[0])
        axes[:k] = vh[:k]
        # sign: the largest-magnitude loading of each axis positive
        biggest = axes.gather(1, axes.abs().argmax(1, keepdim=True))
        axes = axes * torch.where(biggest < 0, -1.0, 1.0)
        power = singular.square()
        total = float(power.sum())
        explained = [float(power[i]) / total if total > 0 and i < k else 0.0 for i in range(2)]
        return cls(mean=mean.float(), components=axes.float(), explained=(explained[0], explained[1]))

    def project(self, points: Tensor) -> Tensor:
        """Points [n, D] -> [n, 2] on the two axes."""
        return (points.detach().to("cpu", torch.float32) - self.mean) @ self.components.T

    def project_vectors(self, vectors: Tensor) -> Tensor:
        """Displacements [n, D] -> [n, 2] (the linear part: no centring)."""
        return vectors.detach().to("cpu", torch.float32) @ self.components.T


@dataclass(frozen=True)
class PlanarFeatureView:
    """A :class:`FeatureView` on the plane of a :class:`FeatureProjection`, as numpy arrays for drawing:
    ``generated`` [n, 2], ``real`` [m, 2], ``drift`` [n, 2] (the projected V of the generated points),
    ``explained`` the share of variance of each axis."""

    group: str
    step: int
    generated: np.ndarray
    real: np.ndarray
    drift: np.ndarray
    explained: tuple[float, float]


@dataclass(frozen=True)
class FeatureView:
    """One feature group of a trainer at ``step``, per image (a map drifted per location is flattened):
    ``generated`` [n, D] the features of the fixed display images, ``real`` [m, D] those of a fixed real
    sample, ``drift`` [n, D] the drift V of the generated ones in feature units (gen + V is the loss's
    target)."""

    group: str
    step: int
    generated: Tensor
    real: Tensor
    drift: Tensor

    def planar(self, projection: FeatureProjection) -> PlanarFeatureView:
        """This view on ``projection``'s plane."""
        return PlanarFeatureView(
            group=self.group,
            step=self.step,
            generated=projection.project(self.generated).numpy(),
            real=projection.project(self.real).numpy(),
            drift=projection.project_vectors(self.drift).numpy(),
            explained=projection.explained,
        )
