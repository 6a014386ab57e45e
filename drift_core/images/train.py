"""Image training: :class:`ImageTrainer` whose ``step()`` returns an :class:`ImageStepRecord` (numbers
only; nothing prints or plots), EMA weights, gradient clipping, bf16 autocast on CUDA, and DDP.

One step (per process):
    noise ~ N(0, I) [B, noise_dim];  y = real images [P, 3, 32, 32] in [-1, 1]
    x = f(noise)                                   (bf16 autocast on CUDA, fp32 elsewhere)
    G = drift_groups(E(.), layout)                 (E frozen; the config's per_location / separate_mean_std)
    L = feature_drift_loss(G(x), G(y), drift_fn)   (drift in fp32; sum over feature groups)
    AdamW step on clip_grad_norm(grad L); warmup from 1e-6; EMA of the weights.

:meth:`ImageTrainer.feature_view` gives one feature group of the fixed display images, of a fixed real
sample and the drift V of the display images, and :meth:`ImageTrainer.feature_projection` the PCA plane
fitted on that real sample (:mod:`drift_core.images.projection`): the images page draws them in 2D.

An :class:`ImageTrainer` is an arm of a :class:`drift_core.run.Run` like the 2D trainer: it draws a
batch (``draw_batch``), takes its rows of a shared lock-step batch (``fit_batch``), steps on it, marks
itself diverged on a non-finite loss (no update is applied), and saves and loads its whole state. The
images page's baseline/lookahead pair is built in :mod:`drift_core.images.pair`.

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
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import (
    CheckpointError,
    check_optimizer_state,
    check_weights,
    checkpoint_bytes,
    load_checkpoint,
    save_checkpoint,
)
from ..config import MAX_STEPS, ConfigError
from ..records import Batch
from ..runtime import make_generator, select_device, stream
from ..train import DivergedError, make_drift_fn, steps_until_diverged
from .batched_drift import make_batched_drift_fn
from .config import ImageExperimentConfig
from .data import ImageSet, load_images, to_model_space, to_uint8
from .drift_loss import FeatureDriftLoss, Gather, feature_drift, feature_drift_loss
from .features import FeatureEncoder, GroupLayout, build_encoder, drift_groups
from .models import build_image_generator
from .projection import FeatureProjection, FeatureView

__all__ = [
    "ImageStepRecord",
    "ImageSnapshot",
    "ImageTrainer",
    "AllGather",
    "DistContext",
    "init_distributed",
    "cached_images",
    "data_stream",
    "DISPLAY_SAMPLES",
    "FEATURE_VIEW_REALS",
]

DISPLAY_SAMPLES = 64
"""Images in a snapshot: the generator's outputs on a fixed display noise, drawn as an 8 x 8 grid."""
FEATURE_VIEW_REALS = 256
"""Real images in the feature-space picture (at most the whole set): the PCA plane is fitted on their
features, they are drawn, and they are the positives of the drift V drawn for the display images."""
FEATURE_VIEW_SEED = 0
"""Seeds the feature-space picture's real sample (stream "reference"): not the run's seed, so every run
on an image set, both arms of a pair included, draws on the same real sample and the same plane."""
FID_NOISE_SEED = 2024
"""Seeds the noise of the images an FID evaluation generates: the same noise at every evaluation, so two
evaluations differ only by the model."""
_IMAGE_CACHE: dict[str, ImageSet] = {}


def cached_images(name: str, *, download: bool = False) -> ImageSet:
    """load_images, memoised per process (the sets are read-only)."""
    if name not in _IMAGE_CACHE:
        _IMAGE_CACHE[name] = load_images(name, download=download)
    return _IMAGE_CACHE[name]


def data_stream(seed: int, rank: int = 0) -> torch.Generator:
    """The batch stream of a run with ``seed`` on process ``rank``: a lone trainer's own stream, and the
    stream a lock-step pair shares (so each arm of the pair trains exactly like a lone trainer)."""
    return stream(seed, "data", part=rank)


class AllGather(Gather):
    """torch.distributed all_gather (no gradient): [n, ...] on each rank -> [world * n, ...] in rank order."""

    def __init__(self):
        self.rank = torch_dist.get_rank()
        self.world_size = torch_dist.get_world_size()

    def __call__(self, t: Tensor) -> Tensor:
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        torch_dist.all_gather(parts, t.contiguous())
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
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(torch_dist.get_rank(), torch_dist.get_world_size(), local_rank), device


@dataclass(frozen=True)
class ImageStepRecord:
    """One step's numbers. ``drift_rms``: base-term raw drift RMS averaged over feature groups (the
    convergence signal); ``group_rms``: the same per group; ``term_rms``: RMS of U_0..U_K;
    ``images_per_s``: generated images per second of this step (this process). ``diverged``: the
    step found a non-finite loss and did not update the model (``message`` says so)."""

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
        row = {
            k: getattr(self, k)
            for k in (
                "step",
                "loss",
                "drift_rms",
                "grad_norm",
                "lr",
                "wall_s",
                "step_s",
                "images_per_s",
                "K",
                "diverged",
            )
        }
        for k, value in enumerate(self.term_rms):
            row[f"term_rms_{k}"] = value
        for name, value in self.group_rms.items():
            row[f"rms[{name}]"] = value
        return row


@dataclass(frozen=True)
class ImageSnapshot:
    """One frame of an image run: uint8 images [n, 3, 32, 32] from the fixed display noise and the EMA
    weights (the same noise every frame, so a grid shows learning, not resampling)."""

    step: int
    images: Tensor


class ImageTrainer:
    """A one-step image generator trained by (lookahead) drifting in an encoder's feature space."""

    LIVE_FIELDS = frozenset({"steps"})
    """The fields :meth:`update` applies to a running trainer (the step budget); any other change
    needs a new one."""

    def __init__(
        self,
        config: ImageExperimentConfig,
        *,
        images: ImageSet | None = None,
        device: torch.device | str | None = None,
        dist: DistContext | None = None,
        encoder: FeatureEncoder | None = None,
    ):
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
        self.images = (
            images if images is not None else cached_images(config.data.dataset, download=config.data.download)
        )
        m, t = config.model, config.train
        self.model = build_image_generator(m.generator, m.noise_dim, generator=stream(t.seed, "init")).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.encoder = (encoder or build_encoder(m.encoder)).to(self.device)
        self.gather: Gather = AllGather() if self.dist.world_size > 1 else Gather()
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.trained = self.model
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=t.lr, betas=(0.9, 0.95), weight_decay=t.weight_decay
        )
        self.data_generator = data_stream(t.seed, self.dist.rank)
        self.display_noise = torch.randn(DISPLAY_SAMPLES, m.noise_dim, generator=stream(t.seed, "display"))
        self.drift_fn = make_drift_fn(config.drift)
        self.layout = GroupLayout(per_location=m.per_location, separate_mean_std=m.separate_mean_std)
        self.batched_drift_fn = make_batched_drift_fn(config.drift) if m.per_location else None
        self._reference_features: dict[str, Tensor] | None = None  # drift groups of the picture's real sample
        self._projections: dict[str, FeatureProjection] = {}
        # On a GPU the uint8 image set lives on the device, so a batch is one gather.
        self._pool = self.images.images.to(self.device) if self.device.type == "cuda" else self.images.images
        self.step_count = 0
        self.wall_s = 0.0
        self.diverged = False
        self.last_record: ImageStepRecord | None = None
        self.force_autocast = False  # bf16 autocast off CUDA too (a test of the GPU path on the CPU)

    def spawn(self, config: ImageExperimentConfig) -> ImageTrainer:
        """A fresh trainer for ``config`` on this one's images, device, processes and (frozen) encoder."""
        return ImageTrainer(config, images=self.images, device=self.device, dist=self.dist, encoder=self.encoder)

    # ---- configuration ----------------------------------------------------------------------
    def update(self, config: ImageExperimentConfig) -> list[str]:
        """Apply live changes (:attr:`LIVE_FIELDS`); returns the changed field names. Raises
        ConfigError when another field changed (that needs a new trainer)."""
        config.validate()
        old, new = self.config.to_flat(), config.to_flat()
        changed = [k for k in new if new[k] != old[k]]
        needs_reset = [k for k in changed if k not in self.LIVE_FIELDS]
        if needs_reset:
            raise ConfigError(f"changing {', '.join(needs_reset)} needs a reset")
        self.config = config
        return changed

    # ---- training ---------------------------------------------------------------------------
    @property
    def autocast_enabled(self) -> bool:
        """bf16 autocast for the generator and encoder: on CUDA (``force_autocast`` lets a test run
        the same path on the CPU, which also supports bf16)."""
        return self.device.type == "cuda" or self.force_autocast

    def lr_at(self, step: int) -> float:
        t = self.config.train
        if t.warmup_steps <= 0 or step >= t.warmup_steps:
            return t.lr
        return 1e-6 + (t.lr - 1e-6) * (step + 1) / t.warmup_steps

    def draw_batch(self, generator: torch.Generator | None = None) -> Batch:
        """Noise [B, noise_dim] and positives [P, 3, 32, 32] in [-1, 1], on the device, from
        ``generator`` (default: this rank's own stream)."""
        t, g = self.config.train, self.data_generator if generator is None else generator
        noise = torch.randn(t.batch_size, self.config.model.noise_dim, generator=g)
        index = torch.randint(0, len(self.images), (t.positives,), generator=g)
        positives = to_model_space(self._pool[index.to(self._pool.device)])
        return Batch(noise=noise.to(self.device, non_blocking=True), positives=positives.to(self.device))

    def fit_batch(self, batch: Batch) -> Batch:
        """This trainer's leading rows of a (larger) shared lock-step batch."""
        t = self.config.train
        return Batch(batch.noise[: t.batch_size], batch.positives[: t.positives])

    def compute_loss(self, noise: Tensor, positives: Tensor) -> FeatureDriftLoss:
        """Generator forward and encoder in bf16 autocast (CUDA only), drift and loss in fp32."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.autocast_enabled):
            x = self.trained(noise)
            gen_features = drift_groups(self.encoder(x), self.layout)
            with torch.no_grad():
                pos_features = drift_groups(self.encoder(positives), self.layout)
        return feature_drift_loss(
            {k: v.float() for k, v in gen_features.items()},
            {k: v.float() for k, v in pos_features.items()},
            self.drift_fn,
            batched_drift_fn=self.batched_drift_fn,
            gather=self.gather,
        )

    def step(self, batch: Batch | None = None) -> ImageStepRecord:
        """One training step on ``batch`` (default: a fresh one from this trainer's stream). On a
        non-finite loss (on any process) no update is applied, the record says ``diverged`` and later
        calls raise :class:`~drift_core.train.DivergedError` until :meth:`recover` or
        :meth:`load_state_dict`."""
        if self.diverged:
            raise DivergedError("this run diverged; reset it or step back before training on")
        start = time.perf_counter()
        lr = self.lr_at(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = batch or self.draw_batch()
        result = self.compute_loss(batch.noise, batch.positives)
        finite = torch.tensor(1.0 if math.isfinite(float(result.loss.detach())) else 0.0)
        if self.dist.world_size > 1:
            finite = finite.to(self.device)
            torch_dist.all_reduce(finite, op=torch_dist.ReduceOp.MIN)
        if float(finite) < 1.0:
            self.diverged = True
            return self._record(
                result,
                start,
                lr,
                float("nan"),
                diverged=True,
                message="loss is not finite; the model was not updated (lower lr or check the data)",
            )
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip))
        self.optimizer.step()
        self._update_ema()
        self.step_count += 1
        return self._record(result, start, lr, grad_norm)

    def _record(
        self, result: FeatureDriftLoss, start: float, lr: float, grad_norm: float, *, diverged=False, message=""
    ) -> ImageStepRecord:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        step_s = time.perf_counter() - start
        self.wall_s += step_s
        rms = result.group_rms
        record = ImageStepRecord(
            step=self.step_count,
            loss=float(result.loss.detach()),
            drift_rms=sum(rms.values()) / max(1, len(rms)),
            term_rms=result.term_rms,
            group_rms=dict(rms),
            grad_norm=grad_norm,
            lr=lr,
            wall_s=self.wall_s,
            step_s=step_s,
            images_per_s=self.config.train.batch_size / max(step_s, 1e-9),
            K=self.config.drift.K,
            diverged=diverged,
            message=message,
        )
        if not diverged:
            self.last_record = record
        return record

    def diverge(self, message: str, start: float | None = None) -> ImageStepRecord:
        """Mark the run diverged and return the record of a step that applied no update (a lock-step
        arm that diverged earlier reports this while the other arms train on)."""
        self.diverged = True
        last = self.last_record
        return ImageStepRecord(
            step=self.step_count,
            loss=float("nan"),
            drift_rms=last.drift_rms if last else float("nan"),
            term_rms=(),
            group_rms={},
            grad_norm=float("nan"),
            lr=self.lr_at(self.step_count),
            wall_s=self.wall_s,
            step_s=0.0 if start is None else time.perf_counter() - start,
            images_per_s=0.0,
            K=self.config.drift.K,
            diverged=True,
            message=message,
        )

    def recover(self) -> None:
        """Leave the diverged state (lower the learning rate first, or it will happen again)."""
        self.diverged = False

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.train.ema_decay
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def run(self, steps: int) -> list[ImageStepRecord]:
        """Up to ``steps`` steps, stopping early on divergence."""
        return steps_until_diverged(self.step, steps)

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
        noise = torch.randn(
            n,
            self.config.model.noise_dim,
            generator=generator or stream(self.config.train.seed, "sample", part=self.step_count),
        )
        return to_uint8(self.generate(noise, ema=ema))

    def fid_samples(self, n: int) -> Tensor:
        """uint8 EMA images [n, 3, 32, 32] for an FID evaluation (noise from :data:`FID_NOISE_SEED`)."""
        return self.sample(n, generator=make_generator(FID_NOISE_SEED))

    def display_grid_images(self, *, ema: bool = True) -> Tensor:
        """uint8 [64, 3, 32, 32] from the fixed display noise (the same noise every frame)."""
        return to_uint8(self.generate(self.display_noise, ema=ema))

    def snapshot(self, n: int = DISPLAY_SAMPLES) -> ImageSnapshot:
        """The first ``n`` (at most :data:`DISPLAY_SAMPLES`) display images of the EMA weights."""
        n = max(1, min(n, DISPLAY_SAMPLES))
        return ImageSnapshot(self.step_count, to_uint8(self.generate(self.display_noise[:n])))

    # ---- the feature space in 2D -------------------------------------------------------------------
    @torch.no_grad()
    def _features(self, images: Tensor) -> dict[str, Tensor]:
        """The feature groups (this trainer's layout, fp32, on the device) of model-space images."""
        return {k: v.float() for k, v in drift_groups(self.encoder(images.to(self.device)), self.layout).items()}

    def reference_features(self) -> dict[str, Tensor]:
        """The feature groups of the picture's fixed real sample (:data:`FEATURE_VIEW_REALS` images drawn
        from the stream (:data:`FEATURE_VIEW_SEED`, "reference")), computed once."""
        if self._reference_features is None:
            n = min(FEATURE_VIEW_REALS, len(self.images))
            index = torch.randperm(len(self.images), generator=stream(FEATURE_VIEW_SEED, "reference"))[:n]
            self._reference_features = self._features(to_model_space(self.images.images[index]))
        return self._reference_features

    @property
    def feature_groups(self) -> tuple[str, ...]:
        """The names of the feature groups the drift runs on (in the encoder's order)."""
        return tuple(self.reference_features())

    def feature_projection(self, group: str) -> FeatureProjection:
        """The PCA plane of ``group`` fitted on the real sample's features (fixed for the run)."""
        if group not in self._projections:
            self._projections[group] = FeatureProjection.fit(self._group(group).flatten(1))
        return self._projections[group]

    def _group(self, group: str) -> Tensor:
        features = self.reference_features()
        if group not in features:
            raise KeyError(f"no feature group {group!r}; this encoder has {', '.join(features)}")
        return features[group]

    @torch.no_grad()
    def feature_view(self, group: str, n: int = DISPLAY_SAMPLES, *, images: Tensor | None = None) -> FeatureView:
        """Feature group ``group`` of the first ``n`` display images (fixed noise, EMA weights: the grid's
        images), of the real sample, and the drift V of the display images against the real sample, as
        the training step computes it (this trainer's K, temperatures and layout), in feature units.
        Per image: a group drifted per location is flattened to [n, L*C]. KeyError for an unknown group.

        ``images``: the display images when the caller has them already (uint8 [n, 3, 32, 32] as a
        snapshot holds them, or model-space floats), so they are not generated twice."""
        real = self._group(group)
        if images is None:
            images = self.generate(self.display_noise[: max(1, min(n, DISPLAY_SAMPLES))])
        elif images.dtype == torch.uint8:
            images = to_model_space(images)
        gen = self._features(images)[group]
        drift = feature_drift(gen, real, self.drift_fn, batched_drift_fn=self.batched_drift_fn)
        return FeatureView(
            group=group,
            step=self.step_count,
            generated=gen.flatten(1).cpu(),
            real=real.flatten(1).cpu(),
            drift=drift.v.flatten(1).cpu(),
        )

    # ---- state and checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly (tensors and plain values only)."""
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_generator": self.data_generator.get_state(),
            "step": self.step_count,
            "wall_s": self.wall_s,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (as :meth:`state_dict` gives it); leaves the diverged state."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_generator.set_state(state["data_generator"])
        self.step_count = int(state["step"])
        self.wall_s = float(state.get("wall_s", 0.0))
        self.diverged = False
        self.last_record = None

    def save(self, path) -> None:
        save_checkpoint(path, self.state_dict(), kind="images")

    def checkpoint_bytes(self) -> bytes:
        """The checkpoint file's bytes (a download)."""
        return checkpoint_bytes(self.state_dict(), kind="images")

    @classmethod
    def load(
        cls,
        source,
        *,
        device: torch.device | str | None = None,
        images: ImageSet | None = None,
        dist: DistContext | None = None,
    ) -> ImageTrainer:
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
        step, wall_s = data.get("step"), data.get("wall_s", 0.0)
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
            raise CheckpointError(f"the checkpoint's step is not a whole number from 0 to {MAX_STEPS:,}")
        if isinstance(wall_s, bool) or not isinstance(wall_s, (int, float)) or not 0 <= wall_s < math.inf:
            raise CheckpointError("the checkpoint's training time (wall_s) is not a finite number >= 0")
        try:
            trainer.load_state_dict({**data, "optimizer": optimizer_state})
        except (KeyError, RuntimeError, ValueError, TypeError, OverflowError) as err:
            raise CheckpointError(f"the checkpoint does not match its own config: {str(err)[:200]}") from None
        return trainer
