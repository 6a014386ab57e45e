"""One-step convolutional generators: noise [B, noise_dim] -> image [B, 3, 32, 32] (model space,
nominally [-1, 1]; the output is not squashed, as in the drifting paper, and is clamped for display).

* ``tiny``: linear -> 4x4x128, three (upsample x2, conv3x3, GroupNorm, SiLU) stages to 32x32, 1x1 out.
  About 0.4 M parameters; learns visibly on a CPU in minutes.
* ``base``: linear -> 4x4x256, three stages of (upsample x2, two residual blocks with GroupNorm/SiLU)
  at widths 256, 128, 64; about 5 M parameters; for GPUs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["TinyGenerator", "BaseGenerator", "build_image_generator", "count_parameters"]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4), channels)


class TinyGenerator(nn.Module):
    def __init__(self, noise_dim: int = 64, width: int = 128):
        super().__init__()
        self.noise_dim = noise_dim
        self.width = width
        self.project = nn.Linear(noise_dim, width * 16)
        chans = [width, width, width // 2, width // 4]
        stages = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            stages += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c_out, 3, padding=1),
                _norm(c_out),
                nn.SiLU(),
            ]
        self.body = nn.Sequential(_norm(width), nn.SiLU(), *stages)
        self.out = nn.Conv2d(chans[-1], 3, 1)

    def forward(self, noise: Tensor) -> Tensor:
        """noise [B, noise_dim] -> images [B, 3, 32, 32]."""
        h = self.project(noise).view(-1, self.width, 4, 4)
        return self.out(self.body(h))


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            _norm(c_in),
            nn.SiLU(),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            _norm(c_out),
            nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class BaseGenerator(nn.Module):
    def __init__(self, noise_dim: int = 128, width: int = 256):
        super().__init__()
        self.noise_dim = noise_dim
        self.width = width
        self.project = nn.Linear(noise_dim, width * 16)
        chans = [width, width, width // 2, width // 4]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _ResBlock(c_in, c_out), _ResBlock(c_out, c_out)]
        self.body = nn.Sequential(*layers, _norm(chans[-1]), nn.SiLU())
        self.out = nn.Conv2d(chans[-1], 3, 3, padding=1)

    def forward(self, noise: Tensor) -> Tensor:
        """noise [B, noise_dim] -> images [B, 3, 32, 32]."""
        h = self.project(noise).view(-1, self.width, 4, 4)
        return self.out(self.body(h))


def build_image_generator(name: str, noise_dim: int, *, generator: torch.Generator | None = None) -> nn.Module:
    """A freshly initialised generator; ``generator`` seeds the initialisation (CPU, device-independent)."""
    if generator is not None:
        state = torch.random.get_rng_state()
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    try:
        if name == "tiny":
            return TinyGenerator(noise_dim)
        if name == "base":
            return BaseGenerator(noise_dim)
        raise ValueError(f"unknown generator {name!r}; choose tiny or base")
    finally:
        if generator is not None:
            torch.random.set_rng_state(state)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
