"""Frozen encoders that map images to several *feature groups*; drift is computed per group.

An encoder maps model-space images [N, 3, 32, 32] (in [-1, 1], differentiable) to an ordered dict
{group name: features [N, D_group]}. Following the drifting paper (A.5), groups are per-stage
channel statistics (mean and std over locations, "b"), pooled patch means ("c/d") and whole small
feature maps ("a", flattened here into one vector per image rather than one problem per location).

* ``pixels``: one group, the raw image (pixel-space drifting). Offline.
* ``random-conv``: a fixed, randomly initialised 4-stage conv net (seed 0, identical on every
  machine), plus the raw-pixel group. Offline; random conv features carry useful local statistics.
* ``auto``: ``resnet18`` when its weights are cached, else ``random-conv``.
* ``resnet18``: torchvision's ImageNet ResNet-18, only when its weights are already in the torch hub
  cache (``$TORCH_HOME/hub/checkpoints``); never downloaded here. Raises :class:`EncoderUnavailable`
  otherwise.

The FID Inception network is deliberately never offered as a drift encoder (that would optimise the
metric itself).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "EncoderUnavailable",
    "FeatureEncoder",
    "PixelEncoder",
    "RandomConvEncoder",
    "ResNet18Encoder",
    "build_encoder",
    "resnet18_weights_path",
]


class EncoderUnavailable(RuntimeError):
    """The encoder's weights are not available; the message says where to put them."""


def _mean_std(h: Tensor) -> Tensor:
    """[N, C, H, W] -> [N, 2C]: per-channel mean and std over locations."""
    flat = h.flatten(2)
    return torch.cat([flat.mean(2), (flat.var(2, unbiased=False) + 1e-6).sqrt()], dim=1)


class FeatureEncoder(nn.Module):
    """Base class: frozen (no parameter requires grad, always eval); ``forward`` returns groups."""

    name = "encoder"

    def freeze(self) -> FeatureEncoder:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> FeatureEncoder:  # stays in eval mode
        return super().train(False)


class PixelEncoder(FeatureEncoder):
    name = "pixels"

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict(pixels=x.flatten(1))


class RandomConvEncoder(FeatureEncoder):
    """Four conv stages (32, 64, 128, 256 channels at 32, 16, 8, 4 px), ReLU, He-normal init from a
    fixed seed. Groups: pixels [3072]; stage{1..4}.mean_std [2C]; stage3.patch2 (2x2 means of the
    8x8 map) [2048]; stage4.map [4096]."""

    name = "random-conv"

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        widths = (32, 64, 128, 256)
        convs = []
        c_in = 3
        for i, c in enumerate(widths):
            conv = nn.Conv2d(c_in, c, 3, stride=1 if i == 0 else 2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (c_in * 9)) ** 0.5)
                conv.bias.zero_()
            convs.append(conv)
            c_in = c
        self.convs = nn.ModuleList(convs)
        self.freeze()

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        groups: OrderedDict[str, Tensor] = OrderedDict(pixels=x.flatten(1))
        h = x
        for i, conv in enumerate(self.convs, start=1):
            h = torch.relu(conv(h))
            groups[f"stage{i}.mean_std"] = _mean_std(h)
            if i == 3:
                groups["stage3.patch2"] = nn.functional.avg_pool2d(h, 2).flatten(1)
            if i == 4:
                groups["stage4.map"] = h.flatten(1)
        return groups


def resnet18_weights_path() -> Path:
    """Where torchvision keeps the ImageNet ResNet-18 weights in the torch hub cache."""
    from torchvision.models import ResNet18_Weights  # torchvision costs seconds to import: only ResNet-18 needs it

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(ResNet18_Weights.IMAGENET1K_V1.url).name


class ResNet18Encoder(FeatureEncoder):
    """ImageNet ResNet-18 on 64x64 upsampled, ImageNet-normalised input. Groups:
    layer{1..4}.mean_std; layer3.map (4x4x256) [4096]; layer4.map (2x2x512) [2048]."""

    name = "resnet18"

    def __init__(self, weights_path: Path | None = None):
        super().__init__()
        from torchvision.models import resnet18  # seconds to import; only this encoder needs it

        path = Path(weights_path) if weights_path is not None else resnet18_weights_path()
        if not path.is_file():
            raise EncoderUnavailable(
                f"ResNet-18 ImageNet weights are not in the torch hub cache ({path}); put "
                f"{path.name} there (torchvision downloads it with resnet18(weights='IMAGENET1K_V1') when online) "
                "or use the offline 'random-conv' encoder."
            )
        net = resnet18()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.freeze()

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        n = self.net
        h = nn.functional.interpolate((x + 1) / 2, size=(64, 64), mode="bilinear", align_corners=False)
        h = (h - self.mean) / self.std
        h = n.relu(n.bn1(n.conv1(h)))  # no max-pool at this resolution: 32x32
        groups: OrderedDict[str, Tensor] = OrderedDict()
        for i, layer in enumerate((n.layer1, n.layer2, n.layer3, n.layer4), start=1):
            h = layer(h)
            groups[f"layer{i}.mean_std"] = _mean_std(h)
            if i == 3:
                groups["layer3.map"] = nn.functional.avg_pool2d(h, 2).flatten(1)
            if i == 4:
                groups["layer4.map"] = h.flatten(1)
        return groups


def build_encoder(name: str) -> FeatureEncoder:
    """The frozen encoder called ``name``: pixels | random-conv | resnet18 | auto (resnet18 when its
    weights are in the torch hub cache, else random-conv; ``.name`` says which one was built)."""
    if name == "auto":
        name = "resnet18" if resnet18_weights_path().is_file() else "random-conv"
    if name == "pixels":
        return PixelEncoder().freeze()
    if name == "random-conv":
        return RandomConvEncoder()
    if name == "resnet18":
        return ResNet18Encoder()
    raise ValueError(f"unknown encoder {name!r}; choose pixels, random-conv, resnet18 or auto")
