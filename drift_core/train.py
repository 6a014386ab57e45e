"""2D training: a Trainer whose ``step()`` returns numbers, snapshots for drawing, and a lock-step runner.

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

import torch
from torch import Tensor

from ._graph_step import CapturedStep
from .checkpoint import CheckpointError, check_optimizer_state, check_weights, load_checkpoint, save_checkpoint
from .config import LIVE_FIELDS, MAX_STEPS, ConfigError, DriftConfig, ExperimentConfig
from .data.points import PointSetError, load_points
from .data.toy2d import SAMPLERS, PointSet, mixture_modes
from .lookahead import LookaheadField, lookahead_field
from .loss import drifting_loss
from .models import build_generator
from .records import Batch, Snapshot, StepRecord
from .runtime import adaptive_cpu_threads, select_device, stream, stream_seed

__all__ = [
    "Batch",
    "StepRecord",
    "Snapshot",
    "Trainer",
    "Lockstep",
    "make_drift_fn",
    "DivergedError",
    "start_center",
]


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


def make_drift_fn(drift: DriftConfig) -> Callable[[Tensor, Tensor], LookaheadField]:
    """The drift callable for a config: lookahead with K = drift.K (K = 0 is the baseline)."""
    return partial(
        lookahead_field,
        K=drift.K,
        tau=drift.temperatures,
        alpha=drift.alpha,
        scaling=drift.scaling,
        weighting=drift.weighting,
        gamma=drift.gamma,
        lam=drift.lam,
        negatives=drift.negatives,
        normalize_distance=drift.normalize_distance,
        attraction_only=drift.attraction_only,
    )


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


class Trainer:
    """Trains one MLP generator on a 2D distribution with baseline or lookahead drifting.

    Args:
        config: the experiment.
        points: a user point set [M, 2] when ``config.data.dataset == "custom"``.
        device: overrides ``config.train.device``.
    """

    OOM_MIN_BATCH = 64
    """After a GPU out-of-memory error the batch is halved down to this size, then the run moves to the CPU."""
    LIVE_FIELDS = LIVE_FIELDS
    """The fields :meth:`update` applies to a running trainer; any other change needs a new one."""

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        points: Tensor | None = None,
        device: str | None = None,
    ):
        config.validate()
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
        center = start_center(config.data.dataset, config.model.init, self.sampler, stream(seed, "start"))
        self.model = build_generator(config.model, seed=stream_seed(seed, "init"), center=center).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr)
        self.data_generator = stream(seed, "data")
        display_generator = stream(seed, "display")
        self.display_noise = torch.randn(512, config.model.noise_dim, generator=display_generator)
        self.display_positives = self.sampler(512, generator=display_generator)
        self.step_count = 0
        self.wall_s = 0.0
        self.diverged = False
        self.last_record: StepRecord | None = None
        self.drift_fn = make_drift_fn(config.drift)
        self._previous_state: dict | None = None
        self.undo_updates: bool | None = None  # None: only off the CPU (see _save_previous)
        self._saved_this_attempt = False
        self.fallback_notices: list[str] = []  # one per out-of-memory fallback (smaller batch, CPU), oldest first
        self.capture_cuda_graph: bool | None = None  # replay the step from a CUDA graph; None: on CUDA (_graph_step)
        self._captured = CapturedStep()

    # ---- configuration ------------------------------------------------------------------------
    def update(self, config: ExperimentConfig) -> list[str]:
        """Apply live changes (drift settings, batch size, lr, step budget) without a reset.
        Returns the names of the fields that changed; raises ConfigError if a reset field changed."""
        config.validate()
        old, new = self.config.to_flat(), config.to_flat()
        changed = [k for k in new if new[k] != old[k]]
        needs_reset = [k for k in changed if k not in LIVE_FIELDS]
        if needs_reset:
            raise ConfigError(f"changing {', '.join(needs_reset)} needs a reset")
        self.config = config
        self.drift_fn = make_drift_fn(config.drift)
        for group in self.optimizer.param_groups:
            group["lr"] = config.train.lr
        return changed

    # ---- training -----------------------------------------------------------------------------
    def draw_batch(self, generator: torch.Generator | None = None) -> Batch:
        """Fresh noise [N, noise_dim] and positives [N, 2] from ``generator`` (default: the trainer's)."""
        g = self.data_generator if generator is None else generator
        n = self.config.train.batch_size
        noise = torch.randn(n, self.config.model.noise_dim, generator=g)
        return Batch(noise=noise, positives=self.sampler(n, generator=g))

    def fit_batch(self, batch: Batch) -> Batch:
        """This trainer's leading rows of a (larger) shared lock-step batch."""
        n = self.config.train.batch_size
        return Batch(batch.noise[:n], batch.positives[:n])

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
        drift = self.config.drift
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
        record = StepRecord(
            step=self.step_count,
            loss=float(out.loss.detach()),
            drift_rms=tuple(float(r) for r in out.field.raw_rms),
            wall_s=self.wall_s,
            step_s=step_s,
            lr=self.config.train.lr,
            K=drift.K,
            tau=drift.tau,
            batch_size=self.config.train.batch_size,
        )
        self.last_record = record
        return record

    def diverge(self, message: str, start: float | None = None) -> StepRecord:
        """Mark the run diverged and return the record of a step that applied no update (``start``:
        when the step began, for its duration). Going back to a kept finite state is the run's:
        :meth:`drift_core.run.Run.advance` restores the newest state on its tape."""
        self.optimizer.zero_grad(set_to_none=True)
        self.diverged = True
        last = self.last_record
        return StepRecord(
            step=self.step_count,
            loss=float("nan"),
            drift_rms=last.drift_rms if last else (),
            wall_s=self.wall_s,
            step_s=0.0 if start is None else time.perf_counter() - start,
            lr=self.config.train.lr,
            K=self.config.drift.K,
            tau=self.config.drift.tau,
            batch_size=self.config.train.batch_size,
            diverged=True,
            message=message,
        )

    def recover(self) -> None:
        """Leave the diverged state. Lower the learning rate before training on, or the same thing
        will happen again."""
        self.diverged = False

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

    def run(self, steps: int) -> list[StepRecord]:
        """Up to ``steps`` steps, stopping early on divergence."""
        records = []
        for _ in range(steps):
            records.append(self.step())
            if records[-1].diverged:
                break
        return records

    # ---- drawing --------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n generated points [n, 2] (CPU)."""
        g = generator if generator is not None else stream(self.config.train.seed, "sample")
        self.model.eval()
        noise = torch.randn(n, self.config.model.noise_dim, generator=g)
        return self.model(noise.to(self.device)).float().cpu()

    @torch.no_grad()
    def snapshot(self, n: int = 512) -> Snapshot:
        """Outputs on a fixed display noise (particles keep their identity from frame to frame),
        with the current drift config's field and every lookahead term."""
        n = max(2, min(n, self.display_noise.shape[0]))
        self.model.eval()
        x = self.model(self.display_noise[:n].to(self.device)).float()
        positives = self.display_positives[:n].to(self.device)
        field = self.drift_fn(x, positives)
        to_np = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
        return Snapshot(
            step=self.step_count,
            generated=to_np(x),
            positives=to_np(positives),
            v=to_np(field.v),
            v_pos=to_np(field.base.v_pos),
            v_neg=to_np(field.base.v_neg),
            terms=[to_np(t) for t in field.terms],
            points=[to_np(p) for p in field.points],
            weights=field.weights,
        )

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

    def save(self, path) -> None:
        """Write a checkpoint (see :mod:`drift_core.checkpoint`)."""
        save_checkpoint(path, self.state_dict(), kind="toy2d")

    @classmethod
    def load(cls, source, *, device: str | None = None, limits=None) -> Trainer:
        """A trainer restored from a checkpoint file or bytes; every problem of the file is a
        CheckpointError (its weights and optimiser state are checked against the freshly built model
        and optimiser, so an accepted checkpoint trains). An unavailable ``device`` is the caller's
        problem, not the file's: a ConfigError.

        With ``limits`` (a :class:`~drift_core.limits.Limits`), a checkpoint whose configuration is
        beyond this server's limits is refused before anything is built."""
        if device is not None:
            try:
                select_device(device)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        data = load_checkpoint(source, kind="toy2d")
        try:
            if not isinstance(data.get("config"), dict):
                raise CheckpointError("the checkpoint has no configuration")
            config = ExperimentConfig.from_dict(data["config"])
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
            trainer = cls(config, points=points, device=device)
            check_weights(trainer.model, data.get("model"))
            data = {**data, "optimizer": check_optimizer_state(trainer.optimizer, data.get("optimizer"))}
            step, wall_s = data.get("step"), data.get("wall_s", 0.0)
            if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
                raise CheckpointError(f"the checkpoint's step is not a whole number from 0 to {MAX_STEPS:,}")
            if isinstance(wall_s, bool) or not isinstance(wall_s, (int, float)) or not 0 <= wall_s < math.inf:
                raise CheckpointError("the checkpoint's training time (wall_s) is not a finite number >= 0")
            trainer.load_state_dict(data)
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
        return trainer


class Lockstep:
    """Trains several arms from the same seed on the same noise and data batches, so that they differ
    only in what their configs differ in (the drift, or the learning rate).

    The arms are 2D :class:`Trainer` s built from ``configs`` (which must share the dataset, model and
    seed, so the initial weights are identical), or any trainers with ``draw_batch``, ``fit_batch``,
    ``step(batch)`` and ``diverge`` (the image pair) through :meth:`of`.
    """

    def __init__(
        self, configs: dict[str, ExperimentConfig], *, points: Tensor | None = None, device: str | None = None
    ):
        if not configs:
            raise ConfigError("lock-step needs at least one configuration")
        first = next(iter(configs.values()))
        for name, cfg in configs.items():
            if (cfg.data, cfg.model, cfg.train.seed) != (first.data, first.model, first.train.seed):
                raise ConfigError(
                    f"configuration {name!r} differs in dataset, model or seed; lock-step needs them equal"
                )
        self.trainers = {name: Trainer(cfg, points=points, device=device) for name, cfg in configs.items()}
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
