"""One-step generators for 2D toys: an MLP noise -> point."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .config import ModelConfig

__all__ = ["MLPGenerator", "build_generator"]


class MLPGenerator(nn.Module):
    """x = f(eps): Linear(noise_dim, width) -> SiLU -> [Linear(width, width) -> SiLU] x (depth-1) -> Linear(width, out_dim).

    The paper's toy preset is noise 32 -> 256 x 3 -> 2 with SiLU (official notebook); out_dim is the
    data's dimension D (2, or D for data embedded in D dimensions).
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


def build_generator(
    config: ModelConfig, *, seed: int, center: Tensor | None = None, spread: float = 0.05, out_dim: int = 2
) -> MLPGenerator:
    """Build the MLP (outputs of dimension ``out_dim``; ``center`` [out_dim]) with weights initialised
    from ``seed`` alone: each Linear gets PyTorch's default initialisation (Kaiming-uniform weights,
    uniform biases in +-1/sqrt(fan_in)) drawn from its own generator, never from torch's global one, so
    two sessions building models at once in threads of one server each get exactly their seed's weights."""
    model = MLPGenerator(config.noise_dim, config.width, config.depth, out_dim)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    if center is not None:
        model.start_at(center, spread)
    return model
