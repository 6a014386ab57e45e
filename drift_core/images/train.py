"""Image training: :class:`ImageTrainer` whose ``step()`` returns an :class:`ImageStepRecord` (numbers
only; nothing prints or plots), EMA weights, gradient clipping, bf16 autocast on CUDA, and DDP.

One step (per process):
    noise ~ N(0, I) [B, noise_dim];  y = real images [P, 3, 32, 32] in [-1, 1]
    x = f(noise)                                   (bf16 autocast on CUDA, fp32 elsewhere)
    L = feature_drift_loss(E(x), E(y), drift_fn)   (drift in fp32; E frozen; sum over feature groups)
    AdamW step on clip_grad_norm(grad L); warmup from 1e-6; EMA of the weights.

Multi-GPU (torchrun): each rank draws its own noise and positives; the drift of every feature group is
computed over the **all-gathered** batch (world x B generated, world x P positives; gathered without
gradient), each rank keeps its own rows of V for its local gradient, and DDP averages the gradients.
This equals one process with the whole batch, which is what the field's definition needs.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from ..checkpoint import CheckpointError, check_optimizer_state, check_weights, load_checkpoint, save_checkpoint
from ..config import MAX_STEPS, ConfigError
from ..runtime import make_generator, select_device
from ..train import make_drift_fn
from .config import ImageExperimentConfig
from .data import ImageSet, load_images, to_model_space, to_uint8
from .drift_loss import FeatureDriftLoss, Gather, feature_drift_loss
from .features import FeatureEncoder, build_encoder
from .models import build_image_generator

__all__ = ["ImageStepRecord", "ImageTrainer", "AllGather", "DistContext", "init_distributed", "cached_images"]

DISPLAY_SAMPLES = 64
_IMAGE_CACHE: dict[str, ImageSet] = {}


def cached_images(name: str, *, download: bool = False) -> ImageSet:
    """load_images, memoised per process (the sets are read-only)."""
    if name not in _IMAGE_CACHE:
        _IMAGE_CACHE[name] = load_images(name, download=download)
    return _IMAGE_CACHE[name]


class AllGather(Gather):
    """torch.distributed all_gather (no gradient): [n, ...] on each rank -> [world * n, ...] in rank order."""

    def __init__(self):
        import torch.distributed as dist

        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def __call__(self, t: Tensor) -> Tensor:
        import torch.distributed as dist

        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str = "auto") -> tuple[DistContext, torch.device]:
    """Under torchrun (WORLD_SIZE > 1): init the process group (NCCL on CUDA, gloo on the CPU) and pick
    this rank's device. Otherwise: one process on select_device(device_name)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), select_device(device_name)
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank), device


@dataclass(frozen=True)
class ImageStepRecord:
    """One step's numbers. ``drift_rms``: base-term raw drift RMS averaged over feature groups (the
    convergence signal); ``group_rms``: the same per group; ``term_rms``: RMS of U_0..U_K;
    ``images_per_s``: generated images per second of this step (this process)."""

    step: int
    loss: float
    drift_rms: float
    term_rms: tuple[float, ...]
    group_rms: dict[str, float]
    grad_norm: float
    lr: float
    wall_s: float
    step_s: float
    images_per_s: float
    K: int
    diverged: bool = False
    message: str = ""

    def as_row(self) -> dict:
        row = {k: getattr(self, k) for k in ("step", "loss", "drift_rms", "grad_norm", "lr", "wall_s", "step_s",
                                             "images_per_s", "K", "diverged")}
        for k, value in enumerate(self.term_rms):
            row[f"term_rms_{k}"] = value
        for name, value in self.group_rms.items():
            row[f"rms[{name}]"] = value
        return row


class ImageTrainer:
    """A one-step image generator trained by (lookahead) drifting in an encoder's feature space."""

    def __init__(self, config: ImageExperimentConfig, *, images: ImageSet | None = None,
                 device: torch.device | str | None = None, dist: DistContext | None = None,
                 encoder: FeatureEncoder | None = None):
        config.validate()
        self.config = config
        self.dist = dist or DistContext()
        if isinstance(device, torch.device):
            self.device = device
        else:
            try:
                self.device = select_device(device or config.train.device)
            except ValueError as err:  # a device this machine lacks is a setting it cannot honour
                raise ConfigError(str(err)) from None
        self.images = images if images is not None else cached_images(config.data.dataset, download=config.data.download)
        m, t = config.model, config.train
        self.model = build_image_generator(m.generator, m.noise_dim, generator=make_generator(t.seed)).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.encoder = (encoder or build_encoder(m.encoder)).to(self.device)
        self.gather: Gather = AllGather() if self.dist.world_size > 1 else Gather()
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.trained = self.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=t.lr, betas=(0.9, 0.95), weight_decay=t.weight_decay)
        self.data_generator = make_generator(1_000_003 * (t.seed + 1) + self.dist.rank)
        self.display_noise = torch.randn(DISPLAY_SAMPLES, m.noise_dim, generator=make_generator(t.seed + 12_345))
        self.drift_fn = make_drift_fn(config.drift)
        # On a GPU the uint8 image set lives on the device (CIFAR10: 150 MB), so a batch is one gather.
        self._pool = self.images.images.to(self.device) if self.device.type == "cuda" else self.images.images
        self.step_count = 0
        self.wall_s = 0.0
        self.history: list[dict] = []

    # ---- training ---------------------------------------------------------------------------
    @property
    def autocast_enabled(self) -> bool:
        """bf16 autocast for the generator and encoder: on CUDA (``force_autocast`` lets a test run
        the same path on the CPU, which also supports bf16)."""
        return self.device.type == "cuda" or getattr(self, "force_autocast", False)

    def lr_at(self, step: int) -> float:
        t = self.config.train
        if t.warmup_steps <= 0 or step >= t.warmup_steps:
            return t.lr
        return 1e-6 + (t.lr - 1e-6) * (step + 1) / t.warmup_steps

    def draw_batch(self) -> tuple[Tensor, Tensor]:
        """(noise [B, noise_dim], positives [P, 3, 32, 32] in [-1, 1]) on the device, from this rank's generator."""
        t, g = self.config.train, self.data_generator
        noise = torch.randn(t.batch_size, self.config.model.noise_dim, generator=g)
        index = torch.randint(0, len(self.images), (t.positives,), generator=g)
        positives = to_model_space(self._pool[index.to(self._pool.device)])
        return noise.to(self.device, non_blocking=True), positives.to(self.device)

    def compute_loss(self, noise: Tensor, positives: Tensor) -> FeatureDriftLoss:
        """Generator forward and encoder in bf16 autocast (CUDA only), drift and loss in fp32."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast_enabled):
            x = self.trained(noise)
            gen_features = self.encoder(x)
            with torch.no_grad():
                pos_features = self.encoder(positives)
        return feature_drift_loss({k: v.float() for k, v in gen_features.items()},
                                  {k: v.float() for k, v in pos_features.items()}, self.drift_fn, gather=self.gather)

    def step(self) -> ImageStepRecord:
        start = time.perf_counter()
        lr = self.lr_at(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        noise, positives = self.draw_batch()
        result = self.compute_loss(noise, positives)
        finite = torch.tensor(1.0 if math.isfinite(float(result.loss.detach())) else 0.0)
        if self.dist.world_size > 1:
            import torch.distributed as dist

            finite = finite.to(self.device)
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if float(finite) < 1.0:
            return self._record(result, start, lr, float("nan"), diverged=True,
                                message="loss is not finite; the model was not updated (lower lr or check the data)")
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip))
        self.optimizer.step()
        self._update_ema()
        self.step_count += 1
        return self._record(result, start, lr, grad_norm)

    def _record(self, result: FeatureDriftLoss, start: float, lr: float, grad_norm: float, *, diverged=False, message="") -> ImageStepRecord:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        step_s = time.perf_counter() - start
        self.wall_s += step_s
        rms = result.group_rms
        record = ImageStepRecord(
            step=self.step_count, loss=float(result.loss.detach()), drift_rms=sum(rms.values()) / max(1, len(rms)),
            term_rms=result.term_rms, group_rms=dict(rms), grad_norm=grad_norm, lr=lr, wall_s=self.wall_s,
            step_s=step_s, images_per_s=self.config.train.batch_size / max(step_s, 1e-9),
            K=self.config.drift.K, diverged=diverged, message=message)
        if not diverged:
            self.history.append(record.as_row())
        return record

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.train.ema_decay
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def run(self, steps: int) -> list[ImageStepRecord]:
        return [self.step() for _ in range(steps)]

    # ---- sampling ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, noise: Tensor, *, ema: bool = True) -> Tensor:
        """Model-space images [n, 3, 32, 32] (float32, CPU) for noise [n, noise_dim]."""
        model = self.ema if ema else self.model
        out = []
        for chunk in noise.split(256):
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast_enabled):
                out.append(model(chunk.to(self.device)).float().cpu())
        return torch.cat(out)

    def sample(self, n: int, *, generator: torch.Generator | None = None, ema: bool = True) -> Tensor:
        """uint8 images [n, 3, 32, 32] from fresh noise."""
        noise = torch.randn(n, self.config.model.noise_dim, generator=generator or make_generator(777 + self.step_count))
        return to_uint8(self.generate(noise, ema=ema))

    def display_grid_images(self, *, ema: bool = True) -> Tensor:
        """uint8 [64, 3, 32, 32] from the fixed display noise (the same noise every frame)."""
        return to_uint8(self.generate(self.display_noise, ema=ema))

    # ---- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_generator": self.data_generator.get_state(),
            "step": self.step_count,
            "wall_s": self.wall_s,
            "history": self.history,
        }

    def save(self, path) -> None:
        save_checkpoint(path, self.state_dict(), kind="images")

    @classmethod
    def load(cls, source, *, device: torch.device | str | None = None, images: ImageSet | None = None,
             dist: DistContext | None = None) -> "ImageTrainer":
        """Rebuild a trainer from a checkpoint (``weights_only=True``); any mismatch is a CheckpointError
        (weights, EMA weights and optimiser state are checked against the freshly built ones, so an
        accepted checkpoint trains). A ``device`` this machine lacks is a ConfigError."""
        data = load_checkpoint(source, kind="images")
        try:
            config = ImageExperimentConfig.from_dict(data["config"])
        except (KeyError, ConfigError, TypeError) as err:
            raise CheckpointError(f"the checkpoint's config is not usable: {err}") from None
        if device is None:
            try:
                select_device(config.train.device)
            except ValueError as err:
                raise CheckpointError(f"the checkpoint's config is not usable here: {err}") from None
        trainer = cls(config, images=images, device=device, dist=dist)
        try:
            check_weights(trainer.model, data.get("model"))
            check_weights(trainer.ema, data.get("ema"), "EMA weights")
        except CheckpointError as err:
            raise CheckpointError(f"the checkpoint does not match its own config: {err}") from None
        optimizer_state = check_optimizer_state(trainer.optimizer, data.get("optimizer"))
        step, wall_s, history = data.get("step"), data.get("wall_s", 0.0), data.get("history", [])
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
            raise CheckpointError(f"the checkpoint's step is not a whole number from 0 to {MAX_STEPS:,}")
        if isinstance(wall_s, bool) or not isinstance(wall_s, (int, float)) or not 0 <= wall_s < math.inf:
            raise CheckpointError("the checkpoint's training time (wall_s) is not a finite number >= 0")
        if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
            raise CheckpointError("the checkpoint's history is not a list of rows")
        try:
            trainer.model.load_state_dict(data["model"])
            trainer.ema.load_state_dict(data["ema"])
            trainer.optimizer.load_state_dict(optimizer_state)
            trainer.data_generator.set_state(data["data_generator"])
            trainer.step_count = step
            trainer.wall_s = float(wall_s)
            trainer.history = list(history)
        except (KeyError, RuntimeError, ValueError, TypeError, OverflowError) as err:
            raise CheckpointError(f"the checkpoint does not match its own config: {str(err)[:200]}") from None
        return trainer
