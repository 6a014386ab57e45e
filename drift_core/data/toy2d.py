"""2D toy distributions. Every sampler is ``(n, *, generator) -> Tensor[n, 2]`` (float32, roughly in
[-1, 1]^2 for the paper's temperature tau = 0.05 to make sense), so runs reproduce from a seed.

scikit-learn's generators (moons, circles, swiss roll) take a numpy seed; we draw that seed from the
torch generator, so one torch generator drives everything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn import datasets as skd
from torch import Tensor

__all__ = ["SAMPLERS", "sample", "mixture_modes", "PointSet", "MIXTURE_SIGMA", "dataset_names"]

Sampler = Callable[..., Tensor]


def _np_seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def _normal(n: int, generator: torch.Generator) -> Tensor:
    return torch.randn(n, 2, generator=generator)


def _mixture(centers: Tensor, sigma: float, n: int, generator: torch.Generator) -> Tensor:
    idx = torch.randint(0, centers.shape[0], (n,), generator=generator)
    return centers[idx] + sigma * _normal(n, generator)


def _ring_centers(k: int = 8, radius: float = 0.8) -> Tensor:
    angles = torch.arange(k, dtype=torch.float32) * (2 * math.pi / k)
    return radius * torch.stack([angles.cos(), angles.sin()], 1)


def _grid_centers(k: int = 5, half_width: float = 0.8) -> Tensor:
    ticks = torch.linspace(-half_width, half_width, k)
    return torch.cartesian_prod(ticks, ticks)


BIMODAL_CENTERS = torch.tensor([[-0.6, 0.0], [0.6, 0.0]])
BIMODAL_SCALE = torch.tensor([0.18, 0.08])  # anisotropic, wider along x (paper Fig. 3)

MIXTURE_SIGMA = {"8gaussians": 0.05, "25gaussians": 0.04, "bimodal": 0.18}


def mixture_modes(name: str) -> Tensor | None:
    """Mode centres [k, 2] of a mixture dataset, or None for datasets without discrete modes."""
    return {"8gaussians": _ring_centers(), "25gaussians": _grid_centers(), "bimodal": BIMODAL_CENTERS}.get(name)


def eight_gaussians(n: int, *, generator: torch.Generator) -> Tensor:
    return _mixture(_ring_centers(), MIXTURE_SIGMA["8gaussians"], n, generator)


def twenty_five_gaussians(n: int, *, generator: torch.Generator) -> Tensor:
    return _mixture(_grid_centers(), MIXTURE_SIGMA["25gaussians"], n, generator)


def bimodal(n: int, *, generator: torch.Generator) -> Tensor:
    """The paper's Figure 3 target: two anisotropic Gaussians side by side."""
    idx = torch.randint(0, 2, (n,), generator=generator)
    return BIMODAL_CENTERS[idx] + BIMODAL_SCALE * _normal(n, generator)


def two_moons(n: int, *, generator: torch.Generator) -> Tensor:
    pts, _ = skd.make_moons(n, noise=0.05, random_state=_np_seed(generator))
    pts = (pts - np.array([0.5, 0.25])) / 1.25
    return torch.as_tensor(pts, dtype=torch.float32)


def rings(n: int, *, generator: torch.Generator) -> Tensor:
    pts, _ = skd.make_circles(n, noise=0.03, factor=0.5, random_state=_np_seed(generator))
    return torch.as_tensor(pts * 0.9, dtype=torch.float32)


def swiss_roll(n: int, *, generator: torch.Generator) -> Tensor:
    """The official notebook's swiss roll: t = pi/2 + 4 pi u, (t cos t, t sin t), divided by the
    batch's max |coordinate|, plus 0.03 N(0, 1) noise."""
    t = math.pi / 2 + 4 * math.pi * torch.rand(n, generator=generator)
    pts = torch.stack([t * t.cos(), t * t.sin()], 1)
    pts = pts / pts.abs().max()
    return pts + 0.03 * _normal(n, generator)


def checkerboard(n: int, *, generator: torch.Generator) -> Tensor:
    """The official notebook's checkerboard: 8 unit cells (i = j mod 2) of a 4x4 board on [-1, 1]^2."""
    b = torch.randint(0, 2, (n,), generator=generator)
    i = 2 * torch.randint(0, 2, (n,), generator=generator) + b
    j = 2 * torch.randint(0, 2, (n,), generator=generator) + b
    u = torch.rand(n, 2, generator=generator)
    pts = (torch.stack([i, j], 1).float() + u - 2) / 2
    return pts + 0.05 * _normal(n, generator)


def spirals(n: int, *, generator: torch.Generator) -> Tensor:
    """Two interleaved spiral arms."""
    t = torch.sqrt(torch.rand(n, generator=generator)) * 3 * math.pi
    arm = torch.randint(0, 2, (n,), generator=generator).float() * 2 - 1
    pts = arm[:, None] * torch.stack([t * t.cos(), t * t.sin()], 1) / (3 * math.pi)
    return pts + 0.03 * _normal(n, generator)


def pinwheel(n: int, *, generator: torch.Generator) -> Tensor:
    """Five curved blades (the classic pinwheel of Johnson et al. 2016)."""
    arms, radial_sd, tangential_sd, rate = 5, 0.3, 0.05, 0.25
    idx = torch.randint(0, arms, (n,), generator=generator)
    feats = torch.randn(n, 2, generator=generator) * torch.tensor([radial_sd, tangential_sd])
    feats[:, 0] += 1.0
    angle = idx.float() * (2 * math.pi / arms) + rate * feats[:, 0].exp()
    rot = torch.stack([angle.cos(), -angle.sin(), angle.sin(), angle.cos()], 1).view(n, 2, 2)
    return 0.35 * torch.einsum("nij,nj->ni", rot, feats)


SAMPLERS: dict[str, Sampler] = {
    "8gaussians": eight_gaussians,
    "25gaussians": twenty_five_gaussians,
    "bimodal": bimodal,
    "moons": two_moons,
    "rings": rings,
    "swissroll": swiss_roll,
    "checkerboard": checkerboard,
    "spirals": spirals,
    "pinwheel": pinwheel,
}


def dataset_names() -> tuple[str, ...]:
    return tuple(SAMPLERS) + ("custom",)


def sample(name: str, n: int, *, generator: torch.Generator) -> Tensor:
    """Draw n points [n, 2] from a named toy distribution."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(SAMPLERS)}")
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    return SAMPLERS[name](n, generator=generator)


@dataclass(frozen=True)
class PointSet:
    """A user-supplied finite point set; sampling draws rows with replacement."""

    points: Tensor  # [M, 2]

    def __call__(self, n: int, *, generator: torch.Generator) -> Tensor:
        idx = torch.randint(0, self.points.shape[0], (n,), generator=generator)
        return self.points[idx]
