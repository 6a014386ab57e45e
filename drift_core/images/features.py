"""Frozen encoders that map images to *features*, and how the features become drift problems.

An encoder maps model-space images [N, 3, 32, 32] (in [-1, 1], differentiable) to an ordered dict
{name: features} whose values are vectors [N, D] or feature maps [N, C, H, W]. Following the drifting
paper (A.5), they are per-stage channel statistics ("b": ``stageI.mean`` and ``stageI.std`` [N, C], the
mean and std over locations), pooled patch maps ("c/d") and whole small feature maps ("a"), plus the raw
pixels as one vector.

:func:`drift_groups` turns them into the *feature groups* the drift runs on, one drifting loss per group
(:mod:`drift_core.images.drift_loss`), as a :class:`GroupLayout` says:

* default (``GroupLayout()``): a map is flattened into one vector per image (one drift problem in
  C*H*W dimensions), and a stage's mean and std are concatenated into one group ``stageI.mean_std``
  [N, 2C];
* ``per_location``: each of the H*W locations of a map is its own drift problem over the batch
  (the group is [N, H*W, C]), as the official ``drift_loss`` usage does;
* ``separate_mean_std``: ``stageI.mean`` and ``stageI.std`` are two groups, each its own drift problem
  and loss, as in the official feature dictionary.

Vectors (the pixels, the statistics) are one problem in every layout.

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "EncoderUnavailable",
    "GroupLayout",
    "drift_groups",
    "FeatureEncoder",
    "PixelEncoder",
    "RandomConvEncoder",
    "ResNet18Encoder",
    "build_encoder",
    "resnet18_weights_path",
]


class EncoderUnavailable(RuntimeError):
    """The encoder's weights are not available; the message says where to put them."""


def _add_mean_std(features: OrderedDict[str, Tensor], name: str, h: Tensor) -> None:
    """features[name.mean], features[name.std] = per-channel mean and std over the locations of h
    [N, C, H, W], each [N, C]."""
    flat = h.flatten(2)
    features[f"{name}.mean"] = flat.mean(2)
    features[f"{name}.std"] = (flat.var(2, unbiased=False) + 1e-6).sqrt()


@dataclass(frozen=True)
class GroupLayout:
    """How an encoder's features become feature groups (module docstring): ``per_location`` makes each
    location of a feature map its own drift problem, ``separate_mean_std`` makes a stage's channel means
    and stds two groups. The default is one vector per image and one mean-and-std group per stage."""

    per_location: bool = False
    separate_mean_std: bool = False


def drift_groups(features: Mapping[str, Tensor], layout: GroupLayout = GroupLayout()) -> OrderedDict[str, Tensor]:
    """The feature groups of an encoder's ``features`` in ``layout``: {group: [N, D]} for a group that is
    one drift problem, {group: [N, L, C]} for a map drifted per location (L = H*W locations of C channels).

    A pair ``X.mean``, ``X.std`` becomes the group ``X.mean_std`` = [mean, std] [N, 2C] at the place of
    ``X.mean`` unless ``layout.separate_mean_std``; a map [N, C, H, W] becomes [N, C*H*W] (channel-major,
    as ``flatten(1)``) or, with ``layout.per_location``, [N, H*W, C]."""
    groups: OrderedDict[str, Tensor] = OrderedDict()
    for name, t in features.items():
        stem = name.rpartition(".")[0]
        paired = not layout.separate_mean_std and f"{stem}.mean" in features and f"{stem}.std" in features
        if paired and name == f"{stem}.std":
            continue  # joined to its mean
        if paired and name == f"{stem}.mean":
            groups[f"{stem}.mean_std"] = torch.cat([t, features[f"{stem}.std"]], dim=1)
        elif t.ndim == 4:
            groups[name] = t.flatten(2).transpose(1, 2) if layout.per_location else t.flatten(1)
        else:
            groups[name] = t
    return groups


class FeatureEncoder(nn.Module):
    """Base class: frozen (no parameter requires grad, always eval); ``forward`` returns the features
    (vectors [N, D] and maps [N, C, H, W]; :func:`drift_groups` makes feature groups of them)."""

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
    fixed seed. Features: pixels [3072]; stage{1..4}.mean and .std [C]; stage3.patch2 (2x2 means of
    the 8x8 map) [128, 4, 4]; stage4.map [256, 4, 4]."""

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
        features: OrderedDict[str, Tensor] = OrderedDict(pixels=x.flatten(1))
        h = x
        for i, conv in enumerate(self.convs, start=1):
            h = torch.relu(conv(h))
            _add_mean_std(features, f"stage{i}", h)
            if i == 3:
                features["stage3.patch2"] = nn.functional.avg_pool2d(h, 2)
            if i == 4:
                features["stage4.map"] = h
        return features


def resnet18_weights_path() -> Path:
    """Where torchvision keeps the ImageNet ResNet-18 weights in the torch hub cache."""
    from torchvision.models import ResNet18_Weights  # torchvision costs seconds to import: only ResNet-18 needs it

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(ResNet18_Weights.IMAGENET1K_V1.url).name


class ResNet18Encoder(FeatureEncoder):
    """ImageNet ResNet-18 on 64x64 upsampled, ImageNet-normalised input. Features: layer{1..4}.mean and
    .std; layer3.map (2x2 means of the 8x8 map) [256, 4, 4]; layer4.map [512, 4, 4]."""

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
        features: OrderedDict[str, Tensor] = OrderedDict()
        for i, layer in enumerate((n.layer1, n.layer2, n.layer3, n.layer4), start=1):
            h = layer(h)
            _add_mean_std(features, f"layer{i}", h)
            if i == 3:
                features["layer3.map"] = nn.functional.avg_pool2d(h, 2)
            if i == 4:
                features["layer4.map"] = h
        return features


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
