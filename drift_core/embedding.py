"""The 2D toy data embedded in D dimensions: the bridge from 2D toys to feature space.

A 2D point p is padded with D - 2 small noise coordinates and rotated by a fixed random rotation R
(orthogonal [D, D], drawn from ``stream(seed, "embedding")``):

    embed(p)   = [p, sigma * n] R^T          n ~ N(0, I_{D-2}),  [n, 2] -> [n, D]
    project(x) = (x R)[:, :2]                the plane the data lies in, back in its 2D coordinates
    off_plane(x) = (x R)[:, 2:]              the D - 2 extra coordinates (sigma * n for the data)

so ``project(embed(p)) == p`` (to rounding) and distances between embedded points are those of the
padded points: the rotation only hides the plane from the axes, the noise is what changes distances
(every pair gains about sigma * sqrt(2 (D - 2)) in quadrature, so the kernel's weights flatten as D
grows). ``project`` and ``off_plane`` are linear, so they apply to displacement vectors (V) as well.
At D = 2 a run has no embedding at all (``Embedding.for_config`` gives None), so it is bit for bit a
2D run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .config import DataConfig
from .runtime import stream

__all__ = ["Embedding"]


@dataclass(frozen=True)
class Embedding:
    """A fixed rotation ``rotation`` [D, D] (orthogonal) and the noise ``noise`` (std, data units) of
    the D - 2 extra coordinates."""

    rotation: Tensor
    noise: float

    @classmethod
    def random(cls, dimension: int, noise: float, generator: torch.Generator) -> Embedding:
        """A rotation drawn uniformly (Haar) from ``generator``: Q of the QR decomposition of a Gaussian
        [D, D] matrix, its columns' signs fixed by R's diagonal."""
        if dimension < 2:
            raise ValueError(f"the embedding dimension must be at least 2, got {dimension}")
        gaussian = torch.randn(dimension, dimension, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(gaussian)
        q = q * torch.sign(torch.diagonal(r))[None, :]
        return cls(rotation=q.float(), noise=float(noise))

    @classmethod
    def for_config(cls, data: DataConfig, seed: int) -> Embedding | None:
        """The embedding of a run's data (its ``dimension`` and ``embedding_noise``, the rotation from
        ``stream(seed, "embedding")``); None at D = 2 (no embedding)."""
        if data.dimension == 2:
            return None
        return cls.random(data.dimension, data.embedding_noise, stream(seed, "embedding"))

    @property
    def dimension(self) -> int:
        return self.rotation.shape[0]

    def _rotation_like(self, x: Tensor) -> Tensor:
        return self.rotation.to(device=x.device, dtype=x.dtype)

    def lift(self, points: Tensor) -> Tensor:
        """[n, 2] (or [2]) -> [n, D] (or [D]): the points in the data's plane, without noise."""
        padded = torch.cat([points, points.new_zeros(*points.shape[:-1], self.dimension - 2)], -1)
        return padded @ self._rotation_like(points).T

    def embed(self, points: Tensor, generator: torch.Generator) -> Tensor:
        """[n, 2] -> [n, D]: the points padded with ``noise`` * N(0, 1) extra coordinates (drawn from
        ``generator``), rotated."""
        extra = self.noise * torch.randn(points.shape[0], self.dimension - 2, generator=generator)
        return torch.cat([points, extra.to(points.dtype)], 1) @ self._rotation_like(points).T

    def project(self, x: Tensor) -> Tensor:
        """[n, D] -> [n, 2]: the data plane's coordinates (the inverse of :meth:`lift`)."""
        return x @ self._rotation_like(x)[:, :2]

    def off_plane(self, x: Tensor) -> Tensor:
        """[n, D] -> [n, D - 2]: the extra coordinates (the data's are ``noise`` * N(0, 1))."""
        return x @ self._rotation_like(x)[:, 2:]
