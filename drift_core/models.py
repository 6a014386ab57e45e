"""One-step generators for 2D toys: an MLP noise -> point."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig

__all__ = ["MLPGenerator", "build_generator"]


class MLPGenerator(nn.Module):
    """x = f(eps): Linear(noise_dim, width) -> SiLU -> [Linear(width, width) -> SiLU] x (depth-1) -> Linear(width, 2).

    The paper's toy preset is noise 32 -> 256 x 3 -> 2 with SiLU (official notebook).
    """

    def __init__(self, noise_dim: int = 32, width: int = 256, depth: int = 3, out_dim: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        last = noise_dim
        for _ in range(depth):
            layers += [nn.Linear(last, width), nn.SiLU()]
            last = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(last, out_dim)
        self.noise_dim = noise_dim

    def forward(self, noise: Tensor) -> Tensor:
        """noise [N, noise_dim] -> samples [N, out_dim]."""
        return self.head(self.body(noise))

    @torch.no_grad()
    def start_at(self, center: Tensor, spread: float) -> None:
        """Start scenario: make the initial outputs a tight blob of radius ~``spread`` at ``center``."""
        self.head.weight.mul_(spread / max(float(self.head.weight.std()) * self.head.weight.shape[1] ** 0.5, 1e-8))
        self.head.bias.copy_(center)


def build_generator(config: ModelConfig, *, seed: int, center: Tensor | None = None, spread: float = 0.05) -> MLPGenerator:
    """Build the MLP with weights initialised from ``seed`` (reproducible, independent of the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLPGenerator(config.noise_dim, config.width, config.depth)
    if center is not None:
        model.start_at(center, spread)
    return model
