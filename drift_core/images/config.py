"""Frozen configuration of an image run, with named presets (same style as :mod:`drift_core.config`).

The drift section *is* :class:`drift_core.config.DriftConfig`, so baseline vs lookahead, K, tau and
the multi-temperature set mean exactly what they mean in 2D (see :data:`IMAGE_DRIFT` for the one
default that differs, alpha). Images use ``multi_temperature=True``
(tau x {0.4, 1, 4} = {0.02, 0.05, 0.2} at tau = 0.05, per-tau RMS-normalised) and
``normalize_distance=True`` (tau dimensionless), as in the official code.

Two model fields choose how the encoder's features become drift problems
(:class:`drift_core.images.features.GroupLayout`): ``per_location`` (each location of a feature map is
its own drift problem over the batch, as the official ``drift_loss`` usage; default: a map is one vector
per image) and ``separate_mean_std`` (a stage's channel means and stds are two groups with two losses,
as the official feature dictionary; default: one group). Neither changes the pixels encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..config import MAX_SEED, MAX_STEPS, ConfigError, DriftConfig, SectionedConfig, int_range_problems, setting
from .batched_drift import unsupported_drift_settings
from .data import DATASETS

__all__ = [
    "ImageDataConfig",
    "ImageModelConfig",
    "ImageTrainConfig",
    "ImageExperimentConfig",
    "IMAGE_PRESETS",
    "image_preset",
    "GENERATORS",
    "ENCODERS",
]

GENERATORS = ("tiny", "base")
ENCODERS = ("pixels", "random-conv", "resnet18", "auto")
DEVICES = ("auto", "cpu", "cuda", "mps")
IMAGE_INT_RANGES: dict[str, tuple[int, int]] = {
    "noise_dim": (1, 1024),
    "batch_size": (2, 2**20),
    "positives": (1, 2**20),
    "warmup_steps": (0, MAX_STEPS),
    "steps": (0, MAX_STEPS),
    "seed": (0, MAX_SEED),
}
"""The integers an image experiment can have at all (see :data:`drift_core.config.INT_RANGES`)."""


@dataclass(frozen=True)
class ImageDataConfig:
    dataset: str = setting(
        "demo-digits",
        "cifar10 (read from DRIFT_DATA_DIR, or downloaded with download) or an offline set that needs no "
        "download: demo-digits, demo-photos",
    )
    download: bool = setting(False, "let torchvision download CIFAR10 when it is absent (needs internet)")


@dataclass(frozen=True)
class ImageModelConfig:
    generator: str = setting("tiny", "tiny: ~0.4 M parameters, learns on a CPU in minutes; base: ~3.6 M, for GPUs")
    noise_dim: int = setting(64, "the generator's input noise dimension")
    encoder: str = setting(
        "random-conv",
        "where the drift is computed: raw pixels, the feature groups of a frozen random conv net (random-conv, "
        "offline) or of ResNet-18 trained on ImageNet (resnet18, if its weights are cached); auto: resnet18 if "
        "cached, else random-conv",
    )
    per_location: bool = setting(
        False,
        "each location of a feature map is its own drift problem over the batch, as the official drift_loss is "
        "used; off: a map is one long vector per image",
    )
    separate_mean_std: bool = setting(
        False,
        "each stage's channel means and stds drift as two feature groups with a loss each, as in the official "
        "code; off: one group of both",
    )


@dataclass(frozen=True)
class ImageTrainConfig:
    batch_size: int = setting(64, "generated images per step (per process under torchrun); also the negatives")
    positives: int = setting(64, "real images per step (per process)")
    lr: float = setting(1e-3, "AdamW learning rate after the warmup")
    warmup_steps: int = setting(0, "steps of linear learning-rate warmup from 1e-6")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    ema_decay: float = setting(0.99, "decay of the EMA of the generator weights (samples use the EMA weights)")
    grad_clip: float = setting(2.0, "global gradient-norm clip")
    steps: int = setting(500, "step budget")
    seed: int = setting(0, "seeds the generator's initial weights, its noise and the data batches (named streams)")
    device: str = setting("auto", "auto | cpu | cuda | mps")


IMAGE_DRIFT = DriftConfig(K=0, tau=0.05, multi_temperature=True, normalize_distance=True, alpha=0.1)
"""The images' drift defaults. alpha = 0.1 (not 2D's 1.0): in normalised feature space each
per-temperature RMS-normalised term is O(1) per coordinate, about the whole spread of the data, so
alpha = 1 throws the lookahead points far past the data: on the offline digits K=1 then gave
colour-cast blobs where alpha = 0.1 gave digit-like samples like the baseline's (benchmarks/RESULTS.md,
"Images throughput")."""


@dataclass(frozen=True)
class ImageExperimentConfig(SectionedConfig):
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    model: ImageModelConfig = field(default_factory=ImageModelConfig)
    drift: DriftConfig = field(default_factory=lambda: IMAGE_DRIFT)
    train: ImageTrainConfig = field(default_factory=ImageTrainConfig)

    def validate(self) -> None:
        d, m, r, t = self.data, self.model, self.drift, self.train
        problems = []
        if d.dataset not in DATASETS:
            problems.append(f"dataset must be one of {', '.join(DATASETS)}, got {d.dataset[:40]!r}")
        if m.generator not in GENERATORS:
            problems.append(f"generator must be one of {', '.join(GENERATORS)}")
        if m.encoder not in ENCODERS:
            problems.append(f"encoder must be one of {', '.join(ENCODERS)}")
        problems += int_range_problems(m, IMAGE_INT_RANGES)
        problems += r.problems(max_k=8)
        if m.per_location and unsupported_drift_settings(r):
            problems.append(
                f"per-location drift does not implement {', '.join(unsupported_drift_settings(r))} yet; "
                "keep their defaults or turn per_location off"
            )
        problems += int_range_problems(t, IMAGE_INT_RANGES)
        if not (t.lr > 0 and math.isfinite(t.lr)):
            problems.append("lr must be a positive number")
        if not (t.weight_decay >= 0 and math.isfinite(t.weight_decay)):
            problems.append("weight_decay must be a finite number >= 0")
        if not 0.0 <= t.ema_decay < 1.0:
            problems.append("ema_decay must be in [0, 1)")
        if not (t.grad_clip > 0 and math.isfinite(t.grad_clip)):
            problems.append("grad_clip must be a finite positive number")
        index = t.device[5:] if t.device.startswith("cuda:") else ""
        if t.device not in DEVICES and not (index.isascii() and index.isdigit() and len(index) <= 4):
            problems.append(f"device must be one of {', '.join(DEVICES)} or cuda:N")
        if problems:
            raise ConfigError("; ".join(problems))


IMAGE_PRESETS: dict[str, ImageExperimentConfig] = {
    # A CPU demo: tiny generator on the offline digits, visible learning in a few minutes.
    "demo_cpu": ImageExperimentConfig(),
    # CIFAR10 on a CPU: same tiny generator, random-conv features.
    "cifar10_cpu": ImageExperimentConfig(
        ImageDataConfig("cifar10"),
        ImageModelConfig("tiny"),
        IMAGE_DRIFT,
        ImageTrainConfig(batch_size=64, positives=64, steps=2000),
    ),
    # CIFAR10 on one GPU: the larger generator, pretrained ResNet-18 features when cached (else random-conv).
    "cifar10_gpu": ImageExperimentConfig(
        ImageDataConfig("cifar10", download=True),
        ImageModelConfig("base", 128, "auto"),
        IMAGE_DRIFT,
        ImageTrainConfig(
            batch_size=256, positives=256, lr=2e-4, warmup_steps=1000, weight_decay=0.01, ema_decay=0.999, steps=50_000
        ),
    ),
    # The LDM paper's CIFAR10 comparison (baseline vs K=1, FID at 30k/40k/50k iterations, one GPU). Run it
    # twice: --method baseline and --method lookahead (K=1). See README "Images (CIFAR10)".
    "cifar10_ldm_paper": ImageExperimentConfig(
        ImageDataConfig("cifar10", download=True),
        ImageModelConfig("base", 128, "auto"),
        replace(IMAGE_DRIFT, K=1),
        ImageTrainConfig(
            batch_size=128, positives=128, lr=2e-4, warmup_steps=1000, weight_decay=0.01, ema_decay=0.999, steps=50_000
        ),
    ),
}
"""Named image experiments. ``cifar10_ldm_paper`` reproduces the LDM paper's comparison protocol as far
as it is known (the paper used DINOv3 features, which are not available offline; see the README)."""


def image_preset(name: str) -> ImageExperimentConfig:
    if name not in IMAGE_PRESETS:
        raise ConfigError(f"unknown image preset {name!r}; choose one of {', '.join(IMAGE_PRESETS)}")
    return IMAGE_PRESETS[name]
