"""2D training: a Trainer whose ``step()`` returns numbers, snapshots for drawing, and a lock-step runner.

:class:`ToyArm` is what every 2D arm shares (the data, its embedding in D dimensions, the fixed display
sample, batches, live updates, divergence); :class:`Trainer` trains the generator network on it, and
:class:`drift_core.particles.ParticleTrainer` moves the network's initial outputs by the field alone.

Nothing here prints or plots. The Streamlit pages call ``step()`` a few times per frame, the CLI calls
it in a loop, and the tests call it directly.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TypeVar

import torch
from torch import Tensor

from ._graph_step import CapturedStep
from .checkpoint import CheckpointError, check_optimizer_state, check_weights, load_checkpoint, save_checkpoint
from .config import LIVE_FIELDS, MAX_STEPS, ConfigError, DriftConfig, ExperimentConfig
from .data.points import PointSetError, load_points
from .data.toy2d import SAMPLERS, PointSet, mixture_modes
from .embedding import Embedding
from .lookahead import LookaheadField, lookahead_field, lookahead_options
from .loss import drifting_loss
from .models import MLPGenerator, build_generator
from .records import Batch, Snapshot, StepRecord
from .runtime import adaptive_cpu_threads, select_device, stream, stream_seed

__all__ = [
    "Batch",
    "StepRecord",
    "Snapshot",
    "ToyArm",
    "Trainer",
    "Lockstep",
    "make_drift_fn",
    "field_options",
    "steps_until_diverged",
    "evaluation_noise",
    "initial_generator",
    "DivergedError",
    "start_center",
    "EVAL_SAMPLES",
    "DISPLAY_SAMPLES",
]

EVAL_SAMPLES = 1024
"""Generated and reference points per evaluation, in every front end; also the number of particles of
particle mode (its particles are the samples it is evaluated on)."""
DISPLAY_SAMPLES = 512
"""Particles of the fixed display sample (display noise and display positives) of every 2D arm."""


class DivergedError(RuntimeError):
    """Raised by ``Trainer.step`` after the run has diverged, until it is reset or stepped back."""


def _tree_to(obj, device: torch.device | str, *, clone: bool = False):
    """``obj`` (nested dicts/lists/tuples of tensors and plain values) with every tensor moved to
    ``device`` (copied when ``clone``); plain values are shared."""
    if isinstance(obj, Tensor):
        return obj.detach().to(device, copy=clone)
    if isinstance(obj, dict):
        return {k: _tree_to(v, device, clone=clone) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tree_to(v, device, clone=clone) for v in obj)
    return copy.deepcopy(obj) if clone else obj


def field_options(drift: DriftConfig) -> dict:
    """The :func:`~drift_core.drift.drifting_field` keyword arguments a drift config sets: temperature(s),
    distance normalisation, attraction only, kernel and affinity floor (0 in the config: no floor)."""
    return dict(
        tau=drift.temperatures,
        normalize_distance=drift.normalize_distance,
        attraction_only=drift.attraction_only,
        kernel=drift.kernel,
        affinity_floor=drift.affinity_floor or None,
    )


R = TypeVar("R")


def steps_until_diverged(step: Callable[[], R], steps: int) -> list[R]:
    """Call ``step`` up to ``steps`` times, stopping after the first record that says it diverged
    (``.diverged``); the records, in order. Every trainer's ``run``."""
    records = []
    for _ in range(steps):
        records.append(step())
        if records[-1].diverged:
            break
    return records


def make_drift_fn(drift: DriftConfig) -> Callable[[Tensor, Tensor], LookaheadField]:
    """The drift callable for a config: lookahead with K = drift.K (K = 0 is the baseline)."""
    return partial(lookahead_field, **lookahead_options(drift), **field_options(drift))


def evaluation_noise(config: ExperimentConfig, n: int = EVAL_SAMPLES) -> Tensor:
    """A run's fixed evaluation noise [n, noise_dim] (``stream(seed, "evaluation")``): what the
    :class:`~drift_core.run.Evaluator` feeds the network, and what particle mode's particles start from."""
    return torch.randn(n, config.model.noise_dim, generator=stream(config.train.seed, "evaluation"))


def start_center(dataset: str, scenario: str, sampler, generator: torch.Generator) -> Tensor | None:
    """Where a start scenario puts the initial outputs: between the modes (the data mean), far away
    (3 units beyond the data), or collapsed onto one mode (the first mode, or one data point)."""
    if scenario == "default":
        return None
    reference = sampler(2048, generator=generator)
    mean = reference.mean(0)
    if scenario == "between":
        return mean
    if scenario == "far":
        radius = float((reference - mean).norm(dim=1).max())
        return mean + torch.tensor([1.0, 1.0]) * (radius + 2.0)
    modes = mixture_modes(dataset)
    return modes[0].clone() if modes is not None else reference[0].clone()


def initial_generator(config: ExperimentConfig, sampler, embedding: Embedding | None) -> MLPGenerator:
    """The generator a run starts from (on the CPU): weights from ``stream(seed, "init")``, outputs of
    the data's dimension D, placed by the start scenario (its 2D centre lifted into the data's plane)."""
    seed = config.train.seed
    center = start_center(config.data.dataset, config.model.init, sampler, stream(seed, "start"))
    if center is not None and embedding is not None:
        center = embedding.lift(center)
    return build_generator(config.model, seed=stream_seed(seed, "init"), center=center, out_dim=config.data.dimension)


def _to_numpy(t: Tensor):
    return t.detach().float().cpu().numpy()


class ToyArm:
    """What every 2D arm of a run shares: the config, the 2D dataset (``sampler``) and its embedding in
    D dimensions (``embedding``, None at D = 2), the fixed display sample, batches from the data stream,
    live updates, the step counter and divergence. Subclasses: :class:`Trainer` (the network) and
    :class:`drift_core.particles.ParticleTrainer` (the field alone); ``MODE`` is the config's ``mode``
    each accepts.

    Training happens in D dimensions (the positives, the generated points and V are [N, D]); what is
    drawn or evaluated is projected back onto the data's plane (:meth:`project`), so snapshots and
    samples are always 2D.

    Args:
        config: the experiment.
        points: a user point set [M, 2] when ``config.data.dataset == "custom"``.
        device: overrides ``config.train.device``.
    """

    MODE = ""
    LIVE_FIELDS = LIVE_FIELDS
    """The fields :meth:`update` applies to a running arm; any other change needs a new one."""

    def __init__(self, config: ExperimentConfig, *, points: Tensor | None = None, device: str | None = None):
        config.validate()
        if config.train.mode != self.MODE:
            raise ConfigError(
                f"mode {config.train.mode!r} is not this arm's ({self.MODE!r}): build arms with "
                "drift_core.particles.build_arm, which picks the arm for the mode"
            )
        if config.data.dataset == "custom":
            if points is None:
                raise ConfigError("dataset 'custom' needs a point set (upload a CSV or pass --points)")
            self.sampler = PointSet(points.float())
        else:
            self.sampler = SAMPLERS[config.data.dataset]
        self.points = None if points is None else points.float()
        self.config = config
        try:
            self.device = select_device(device or config.train.device)
        except ValueError as err:  # a device this machine lacks is a setting it cannot honour
            raise ConfigError(str(err)) from None
        seed = config.train.seed
        self.embedding = Embedding.for_config(config.data, seed)
        self.data_generator = stream(seed, "data")
        display_generator = stream(seed, "display")
        self.display_noise = torch.randn(DISPLAY_SAMPLES, config.model.noise_dim, generator=display_generator)
        self.display_positives = self.positives(DISPLAY_SAMPLES, display_generator)
        self.step_count = 0
        self.wall_s = 0.0
        self.diverged = False
        self.last_record: StepRecord | None = None
        self.drift_fn = make_drift_fn(config.drift)

    # ---- data -------------------------------------------------------------------------------------
    @property
    def dimension(self) -> int:
        """D: the dimension training happens in (2, or the embedding's)."""
        return self.config.data.dimension

    def positives(self, n: int, generator: torch.Generator) -> Tensor:
        """n data points [n, D] from ``generator``: the 2D dataset's, embedded when D > 2."""
        y = self.sampler(n, generator=generator)
        return y if self.embedding is None else self.embedding.embed(y, generator)

    def project(self, x: Tensor) -> Tensor:
        """Points or vectors [n, D] -> [n, 2] on the data's plane (the same tensor at D = 2)."""
        return x if self.embedding is None else self.embedding.project(x)

    def draw_batch(self, generator: torch.Generator | None = None) -> Batch:
        """Fresh noise [N, noise_dim] and positives [N, D] from ``generator`` (default: the arm's). Every
        arm draws both, so network and particle arms consume a shared stream alike."""
        g = self.data_generator if generator is None else generator
        n = self.config.train.batch_size
        noise = torch.randn(n, self.config.model.noise_dim, generator=g)
        return Batch(noise=noise, positives=self.positives(n, g))

    def fit_batch(self, batch: Batch) -> Batch:
        """This arm's leading rows of a (larger) shared lock-step batch."""
        n = self.config.train.batch_size
        return Batch(batch.noise[:n], batch.positives[:n])

    # ---- configuration ------------------------------------------------------------------------
    def update(self, config: ExperimentConfig) -> list[str]:
        """Apply live changes (drift settings, batch size, lr, particle step, step budget) without a
        reset. Returns the names of the fields that changed; raises ConfigError if a reset field changed."""
        config.validate()
        old, new = self.config.to_flat(), config.to_flat()
        changed = [k for k in new if new[k] != old[k]]
        needs_reset = [k for k in changed if k not in self.LIVE_FIELDS]
        if needs_reset:
            raise ConfigError(f"changing {', '.join(needs_reset)} needs a reset")
        self.config = config
        self.drift_fn = make_drift_fn(config.drift)
        return changed

    # ---- steps ------------------------------------------------------------------------------------
    def _record(self, loss: float, drift_rms, step_s: float, **extra) -> StepRecord:
        drift = self.config.drift
        return StepRecord(
            step=self.step_count,
            loss=loss,
            drift_rms=tuple(float(r) for r in drift_rms),
            wall_s=self.wall_s,
            step_s=step_s,
            lr=self.config.train.lr,
            K=drift.K,
            tau=drift.tau,
            batch_size=self.config.train.batch_size,
            **extra,
        )

    def diverge(self, message: str, start: float | None = None) -> StepRecord:
        """Mark the run diverged and return the record of a step that applied no update (``start``:
        when the step began, for its duration). Going back to a kept finite state is the run's:
        :meth:`drift_core.run.Run.advance` restores the newest state on its tape."""
        self.diverged = True
        last = self.last_record
        return self._record(
            float("nan"),
            last.drift_rms if last else (),
            0.0 if start is None else time.perf_counter() - start,
            diverged=True,
            message=message,
        )

    def recover(self) -> None:
        """Leave the diverged state. Lower the learning rate (or the particle step) before training
        on, or the same thing will happen again."""
        self.diverged = False

    def run(self, steps: int) -> list[StepRecord]:
        """Up to ``steps`` steps, stopping early on divergence."""
        return steps_until_diverged(self.step, steps)

    # ---- drawing ----------------------------------------------------------------------------------
    def display_sets(self, n: int = DISPLAY_SAMPLES) -> tuple[Tensor, Tensor]:
        """The first n display particles and display positives, each [n, D] in the training space
        (what :meth:`snapshot` computes its field from). Subclasses give the particles."""
        raise NotImplementedError

    @torch.no_grad()
    def snapshot(self, n: int = DISPLAY_SAMPLES) -> Snapshot:
        """The display particles (their identity kept from frame to frame) with the current drift
        config's field and every lookahead term, computed in D dimensions and projected to 2D."""
        x, positives = self.display_sets(max(2, min(n, DISPLAY_SAMPLES)))
        field = self.drift_fn(x, positives)
        flat = lambda t: _to_numpy(self.project(t))  # noqa: E731
        return Snapshot(
            step=self.step_count,
            generated=flat(x),
            positives=flat(positives),
            v=flat(field.v),
            v_pos=flat(field.base.v_pos),
            v_neg=flat(field.base.v_neg),
            terms=[flat(t) for t in field.terms],
            points=[flat(p) for p in field.points],
            weights=field.weights,
        )

    # ---- checkpoints --------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write a checkpoint (see :mod:`drift_core.checkpoint`; both arms' are of kind "toy2d", the
        config's ``mode`` says which)."""
        save_checkpoint(path, self.state_dict(), kind="toy2d")

    @classmethod
    def load(cls, source, *, device: str | None = None, limits=None):
        """An arm restored from a checkpoint file or bytes (see :meth:`from_checkpoint`); an
        unavailable ``device`` is a ConfigError."""
        if device is not None:
            try:
                select_device(device)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        return cls.from_checkpoint(load_checkpoint(source, kind="toy2d"), device=device, limits=limits)

    @classmethod
    def from_checkpoint(cls, data: dict, *, device: str | None = None, limits=None):
        """An arm of this class from a loaded checkpoint; every problem of the file is a
        CheckpointError (its state is checked against a freshly built arm, so an accepted checkpoint
        trains), a checkpoint of the other mode included.

        With ``limits`` (a :class:`~drift_core.limits.Limits`), a checkpoint whose configuration is
        beyond this server's limits is refused before anything is built."""
        try:
            if not isinstance(data.get("config"), dict):
                raise CheckpointError("the checkpoint has no configuration")
            config = ExperimentConfig.from_dict(data["config"])
            if config.train.mode != cls.MODE:
                raise CheckpointError(
                    f"this is a {config.train.mode}-mode checkpoint, not a {cls.MODE} one "
                    "(drift_core.particles.load_arm loads either)"
                )
            if limits is not None:
                try:
                    limits.check(config)
                except ConfigError as err:
                    raise CheckpointError(
                        f"the checkpoint's configuration is beyond this server's limits: {err}"
                    ) from None
            points = data.get("points")
            if points is not None:
                if not isinstance(points, Tensor):
                    raise CheckpointError("the checkpoint's point set is not a tensor")
                try:
                    points = load_points(points)
                except PointSetError as err:
                    raise CheckpointError(f"the checkpoint's point set is not usable: {err}") from None
            arm = cls(config, points=points, device=device)
            data = arm._checked_state(data)
            step, wall_s = data.get("step"), data.get("wall_s", 0.0)
            if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
                raise CheckpointError(f"the checkpoint's step is not a whole number from 0 to {MAX_STEPS:,}")
            if isinstance(wall_s, bool) or not isinstance(wall_s, (int, float)) or not 0 <= wall_s < math.inf:
                raise CheckpointError("the checkpoint's training time (wall_s) is not a finite number >= 0")
            arm.load_state_dict(data)
        except ConfigError as err:
            raise CheckpointError(f"the checkpoint's configuration is not valid: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as err:
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(
                f"the checkpoint is missing or has malformed entries ({type(err).__name__}: {str(err)[:160]})"
            ) from None
        except RuntimeError as err:
            raise CheckpointError(
                f"the weights do not fit the model described in the checkpoint: {str(err)[:200]}"
            ) from None
        return arm

    def _checked_state(self, data: dict) -> dict:
        """``data`` with this arm's own entries checked against it (CheckpointError if unusable)."""
        raise NotImplementedError

    def state_dict(self) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class Trainer(ToyArm):
    """Trains one MLP generator on a 2D distribution (or one embedded in D dimensions) with baseline or
    lookahead drifting. Arguments: see :class:`ToyArm` (``config.train.mode`` must be "network")."""

    MODE = "network"
    OOM_MIN_BATCH = 64
    """After a GPU out-of-memory error the batch is halved down to this size, then the run moves to the CPU."""

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        points: Tensor | None = None,
        device: str | None = None,
    ):
        super().__init__(config, points=points, device=device)
        self.model = initial_generator(config, self.sampler, self.embedding).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr)
        self._previous_state: dict | None = None
        self.undo_updates: bool | None = None  # None: only off the CPU (see _save_previous)
        self._saved_this_attempt = False
        self.fallback_notices: list[str] = []  # one per out-of-memory fallback (smaller batch, CPU), oldest first
        self.capture_cuda_graph: bool | None = None  # replay the step from a CUDA graph; None: on CUDA (_graph_step)
        self._captured = CapturedStep()

    # ---- configuration ------------------------------------------------------------------------
    def update(self, config: ExperimentConfig) -> list[str]:
        changed = super().update(config)
        for group in self.optimizer.param_groups:
            group["lr"] = config.train.lr
        return changed

    update.__doc__ = ToyArm.update.__doc__

    # ---- training -----------------------------------------------------------------------------
    def _save_previous(self) -> None:
        """Copy the state before an update when ``undo_updates`` (default: off the CPU), so an
        out-of-memory error inside the update can be undone. On the CPU the copy would cost every
        step while the models here do not run out of memory mid-update."""
        if not (self.undo_updates if self.undo_updates is not None else self.device.type != "cpu"):
            return
        self._previous_state = {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }
        self._saved_this_attempt = True

    def step(self, batch: Batch | None = None) -> StepRecord:
        """One training step. Returns its record; never prints.

        On NaN/inf (in the outputs, the drift, the loss or the gradients) no update is applied, the
        record says ``diverged=True`` and later calls raise :class:`DivergedError` until
        :meth:`recover`, :meth:`load_state_dict` or a new trainer.

        On an out-of-memory error (``torch.OutOfMemoryError``) the step is undone and retried with
        half the batch (down to :attr:`OOM_MIN_BATCH`), then on the CPU; the record's ``message``
        says what changed. Only when the CPU at the smallest batch runs out of memory too does the
        error propagate (as ``torch.OutOfMemoryError`` with a plain message).
        """
        if self.diverged:
            raise DivergedError("this run diverged; reset it or step back before training on")
        batch = batch or self.draw_batch()
        notices: list[str] = []
        while True:
            failure = ""
            try:
                with adaptive_cpu_threads(self.device):  # fewer CPU threads while other processes hold the cores
                    record = self._captured.step_once(self, batch) or self._step_once(
                        batch
                    )  # CUDA graph replay where it applies
                break
            except torch.OutOfMemoryError as err:
                failure = (str(err).splitlines() or ["out of memory"])[0].split(". GPU ")[0][
                    :120
                ]  # "... Tried to allocate 256 MiB"
            # Outside the except block, so the failed attempt's tensors are already freed.
            notice, batch = self._after_out_of_memory(batch, failure)
            notices.append(notice)
            self.fallback_notices.append(notice)
        if notices:
            record = replace(record, message="; ".join(notices + ([record.message] if record.message else [])))
            if not record.diverged:
                self.last_record = record
        return record

    def _step_once(self, batch: Batch) -> StepRecord:
        self._saved_this_attempt = False
        start = time.perf_counter()
        self.model.train()
        x = self.model(batch.noise.to(self.device))
        message = ""
        if not torch.isfinite(x).all():
            message = "the generator's outputs became NaN/inf (learning rate too high?)"
        else:
            out = drifting_loss(x, batch.positives.to(self.device), self.drift_fn)
            if not torch.isfinite(out.loss):
                message = "the drift or the loss became NaN/inf"
        if message:
            return self.diverge(message, start)
        self._save_previous()
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if not all(bool(torch.isfinite(p.grad).all()) for p in self.model.parameters() if p.grad is not None):
            return self.diverge("the gradients became NaN/inf", start)  # before the update: weights stay finite
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        step_s = time.perf_counter() - start
        self.wall_s += step_s
        self.step_count += 1
        record = self._record(float(out.loss.detach()), out.field.raw_rms, step_s)
        self.last_record = record
        return record

    def diverge(self, message: str, start: float | None = None) -> StepRecord:
        self.optimizer.zero_grad(set_to_none=True)
        return super().diverge(message, start)

    diverge.__doc__ = ToyArm.diverge.__doc__

    # ---- faults: out of memory ---------------------------------------------------
    def _after_out_of_memory(self, batch: Batch, failure: str) -> tuple[str, Batch]:
        """Undo a failed attempt and pick a smaller setting: half the batch, or the CPU.
        Returns (notice for the user, the batch to retry with)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self._saved_this_attempt and self._previous_state is not None:
            # The failure came during backward or the optimizer update: undo any partial update.
            self.model.load_state_dict(self._previous_state["model"])
            self.optimizer.load_state_dict(self._previous_state["optimizer"])
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        n = int(batch.noise.shape[0])
        if n > self.OOM_MIN_BATCH:
            smaller = max(self.OOM_MIN_BATCH, n // 2)
            self.update(self.config.with_values({"batch_size": smaller}))
            notice = (
                f"out of memory at batch size {n} ({failure}); continuing with batch size {smaller}. "
                f"Choose a smaller batch size to avoid this"
            )
            return notice, Batch(batch.noise[:smaller], batch.positives[:smaller])
        if self.device.type != "cpu":
            old = self.device.type
            self.to_device("cpu")
            notice = (
                f"out of {old} memory even at batch size {n} ({failure}); continuing on the CPU (slower). "
                f"Choose a smaller batch size or a smaller model"
            )
            return notice, batch
        raise torch.OutOfMemoryError(
            f"out of memory even at batch size {n} on the CPU ({failure}); choose a smaller model or batch size"
        )

    def to_device(self, device: str) -> None:
        """Move the run (model, optimizer state, rollback copy) to ``device``; training continues there."""
        self.device = select_device(device)
        self.model.to(self.device)
        # load_state_dict casts the optimizer state to the (moved) parameters' device.
        self.optimizer.load_state_dict(_tree_to(self.optimizer.state_dict(), "cpu"))
        if self._previous_state is not None:
            self._previous_state = _tree_to(self._previous_state, self.device)

    # ---- drawing and evaluation --------------------------------------------------------------------
    @torch.no_grad()
    def outputs(self, noise: Tensor) -> Tensor:
        """The generator's outputs on ``noise`` [n, noise_dim]: [n, D] in the training space (CPU)."""
        self.model.eval()
        return self.model(noise.to(self.device)).float().cpu()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n generated points [n, 2] on the data's plane (CPU), from fresh noise."""
        g = generator if generator is not None else stream(self.config.train.seed, "sample")
        return self.project(self.outputs(torch.randn(n, self.config.model.noise_dim, generator=g)))

    @torch.no_grad()
    def display_sets(self, n: int = DISPLAY_SAMPLES) -> tuple[Tensor, Tensor]:
        """The outputs on the first n display noise vectors and the first n display positives, [n, D]
        each, on the trainer's device."""
        self.model.eval()
        x = self.model(self.display_noise[:n].to(self.device)).float()
        return x, self.display_positives[:n].to(self.device)

    # ---- state ----------------------------------------------------------------------------------
    def spawn(self, config: ExperimentConfig) -> Trainer:
        """A fresh trainer for ``config`` on this one's data and device (to load a kept state into)."""
        return Trainer(config, points=self.points, device=str(self.device))

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly (tensors and plain values only)."""
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step_count,
            "wall_s": self.wall_s,
            "data_rng": self.data_generator.get_state(),
            "points": self.points,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.wall_s = float(state.get("wall_s", 0.0))
        self.data_generator.set_state(state["data_rng"])
        self.diverged = False
        self.last_record = None
        self._previous_state = None

    def _checked_state(self, data: dict) -> dict:
        """The checkpoint's weights and optimiser state checked against the freshly built model and
        optimiser."""
        check_weights(self.model, data.get("model"))
        return {**data, "optimizer": check_optimizer_state(self.optimizer, data.get("optimizer"))}


class Lockstep:
    """Trains several arms from the same seed on the same noise and data batches, so that they differ
    only in what their configs differ in (the drift, or the learning rate).

    The arms are 2D arms built by ``build`` (default :class:`Trainer`; a network and a particle arm
    with :func:`drift_core.particles.build_arm`) from ``configs`` (which must share the dataset, model
    and seed, so the initial weights are identical), or any trainers with ``draw_batch``, ``fit_batch``,
    ``step(batch)`` and ``diverge`` (the image pair) through :meth:`of`.
    """

    def __init__(
        self,
        configs: dict[str, ExperimentConfig],
        *,
        points: Tensor | None = None,
        device: str | None = None,
        build: Callable[..., ToyArm] | None = None,
    ):
        if not configs:
            raise ConfigError("lock-step needs at least one configuration")
        first = next(iter(configs.values()))
        for name, cfg in configs.items():
            if (cfg.data, cfg.model, cfg.train.seed) != (first.data, first.model, first.train.seed):
                raise ConfigError(
                    f"configuration {name!r} differs in dataset, model or seed; lock-step needs them equal"
                )
        build = Trainer if build is None else build
        self.trainers = {name: build(cfg, points=points, device=device) for name, cfg in configs.items()}
        self.batch_generator = stream(first.train.seed, "data")

    @classmethod
    def of(cls, trainers: dict, batch_generator: torch.Generator) -> Lockstep:
        """Lock-step over existing trainers (a fork, the image pair) drawing from ``batch_generator``."""
        lockstep = cls.__new__(cls)
        lockstep.trainers, lockstep.batch_generator = trainers, batch_generator
        return lockstep

    def step(self) -> dict:
        """One step of every trainer on one shared batch (sized for the largest batch_size; a trainer
        with a smaller batch uses its leading rows). An arm that diverged earlier applies no update and
        reports so; the others train on."""
        biggest = max(self.trainers.values(), key=lambda t: t.config.train.batch_size)
        batch = biggest.draw_batch(self.batch_generator)
        return {
            name: trainer.diverge("diverged earlier") if trainer.diverged else trainer.step(trainer.fit_batch(batch))
            for name, trainer in self.trainers.items()
        }
