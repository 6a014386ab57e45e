"""Particle mode: the drifting field without the network.

The start points of a network run, moved directly by the field on the same data batches, with no
generator and no optimiser:

    z_i <- z_i + eta * V(z_i),    V = sum_k w_k V_k    (the config's drift: baseline K = 0, or lookahead)

This is the particle flow the network's training follows (paper eq. 2); comparing the two shows what the
one-step generator adds (a smooth map, samples for fresh noise) and what it costs. The facts, one line
each:

* **start points**: the network's initial outputs (the same weights, start scenario and embedding) on
  the run's evaluation noise, so a particle arm and a network arm of one config start as the same
  sample, with equal step-0 metrics;
* **how many**: :data:`~drift_core.train.EVAL_SAMPLES` (1024) particles; they *are* the samples, so an
  evaluation is the particle set against the run's reference sample (the
  :class:`~drift_core.run.Evaluator`'s convention, as many points as a network arm's evaluation);
* **eta**: ``config.train.particle_step`` (live; the default 1 is the paper's eq. 2, x <- x + V). V is
  in data units, so eta is a plain multiplier: with ``multi_temperature`` each temperature's field is
  RMS-normalised to about 1 per coordinate, far above the raw field, and eta must be much smaller. The learning
  rate is not used; the fairness control of a particle comparison doubles eta instead
  (:data:`~drift_core.run.DOUBLED_STEP_ARM`);
* **the field of a particle**: each step the particles are split into ceil(M / N) groups of
  consecutive particles, at most N = ``batch_size`` each and as equal as possible; a group's field is
  the config's drift with the group as queries and negatives (self-pairs masked) and the batch's N
  positives, so each particle's V is the estimator a network output's V is (with N >= M, one group
  of all M particles);
* **data**: every step draws its batch from the data stream exactly as a network arm does (the
  noise too, unused), so a particle run and a network run of one seed, or two arms of one lock-step
  run, see the same positives;
* **drawn**: the first 512 particles, against the run's display positives.

:func:`build_arm` builds the arm a config's ``mode`` asks for, :func:`load_arm` loads either from a
checkpoint.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from .checkpoint import CheckpointError, load_checkpoint
from .config import ConfigError, ExperimentConfig
from .records import Batch, StepRecord
from .runtime import adaptive_cpu_threads, select_device
from .train import (
    DISPLAY_SAMPLES,
    EVAL_SAMPLES,
    DivergedError,
    ToyArm,
    Trainer,
    evaluation_noise,
    initial_generator,
)

__all__ = ["ParticleTrainer", "build_arm", "load_arm", "particle_groups"]


def particle_groups(particles: int, batch_size: int) -> list[slice]:
    """The groups of one particle step: ceil(M / N) runs of consecutive particles, each at most N long
    and as equal as possible (so none is a lone particle with no negatives)."""
    count = max(1, math.ceil(particles / batch_size))
    bounds = [particles * g // count for g in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


class ParticleTrainer(ToyArm):
    """Particle mode (see the module docstring): an arm of a :class:`~drift_core.run.Run` like the network
    :class:`~drift_core.train.Trainer`, with the same ``step`` / ``snapshot`` / ``state_dict`` /
    ``update`` / ``spawn`` and the same records; ``particles`` [M, D] are its state.

    Args:
        config: the experiment (``config.train.mode`` must be "particles").
        points: a user point set [M, 2] when ``config.data.dataset == "custom"``.
        device: overrides ``config.train.device``.
        particles: M, the number of particles (the evaluation's sample size).
    """

    MODE = "particles"

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        points: Tensor | None = None,
        device: str | None = None,
        particles: int = EVAL_SAMPLES,
    ):
        super().__init__(config, points=points, device=device)
        if particles < 2:
            raise ConfigError("particle mode needs at least 2 particles")
        self.start_noise = evaluation_noise(config, particles)
        network = initial_generator(config, self.sampler, self.embedding).eval()
        with torch.no_grad():
            self.particles = network(self.start_noise).float().to(self.device)

    # ---- training ---------------------------------------------------------------------------------
    def step(self, batch: Batch | None = None) -> StepRecord:
        """Move every particle by eta V on ``batch`` (default: the arm's next batch); returns the record
        (``loss`` = mean V^2 over the particles, ``drift_rms`` the RMS of each raw term over them).
        A step whose particles would become NaN/inf applies nothing and marks the arm diverged."""
        if self.diverged:
            raise DivergedError("this run diverged; reset it or step back before training on")
        batch = batch or self.draw_batch()
        with adaptive_cpu_threads(self.device):
            return self._step_once(batch)

    @torch.no_grad()
    def _step_once(self, batch: Batch) -> StepRecord:
        start = time.perf_counter()
        positives = batch.positives.to(device=self.device, dtype=self.particles.dtype)
        z = self.particles
        v = torch.empty_like(z)
        raw_squares = None  # sum over groups of (group size) * RMS^2 of each raw term
        for group in particle_groups(z.shape[0], self.config.train.batch_size):
            field = self.drift_fn(z[group], positives)
            v[group] = field.v
            weighted = field.raw_rms.double().square() * (group.stop - group.start)
            raw_squares = weighted if raw_squares is None else raw_squares + weighted
        moved = z + self.config.train.particle_step * v
        if not torch.isfinite(moved).all():
            return self.diverge("the particles became NaN/inf (particle step too large?)", start)
        self.particles = moved
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        step_s = time.perf_counter() - start
        self.wall_s += step_s
        self.step_count += 1
        loss = float(v.double().square().mean())
        record = self._record(loss, (raw_squares / z.shape[0]).sqrt(), step_s)
        self.last_record = record
        return record

    # ---- drawing and evaluation --------------------------------------------------------------------
    def outputs(self, noise: Tensor) -> Tensor:
        """The particles [M, D] (CPU): the arm's outputs for its own start noise, the run's evaluation
        noise (which they started from). Any other noise is a ValueError: particles exist only there."""
        if noise.shape != self.start_noise.shape or not torch.equal(noise.cpu(), self.start_noise):
            raise ValueError(
                f"a particle arm has outputs only for its start noise (the run's {self.start_noise.shape[0]} "
                "evaluation noise vectors): evaluate it with that noise, or build it with as many particles"
            )
        return self.particles.float().cpu()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """The first n particles [n, 2] on the data's plane (CPU): particle mode has no fresh samples, so
        at most M come back and ``generator`` is not used."""
        return self.project(self.particles[:n].float().cpu())

    def display_sets(self, n: int = DISPLAY_SAMPLES) -> tuple[Tensor, Tensor]:
        """The first n particles and the first n display positives, [n, D] each, on the arm's device."""
        return self.particles[:n], self.display_positives[:n].to(self.device)

    # ---- state ----------------------------------------------------------------------------------------
    def spawn(self, config: ExperimentConfig) -> ParticleTrainer:
        """A fresh particle arm for ``config`` on this one's data, device and particle count."""
        return ParticleTrainer(config, points=self.points, device=str(self.device), particles=self.particles.shape[0])

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly (tensors and plain values only)."""
        return {
            "config": self.config.to_dict(),
            "particles": self.particles,
            "step": self.step_count,
            "wall_s": self.wall_s,
            "data_rng": self.data_generator.get_state(),
            "points": self.points,
        }

    def load_state_dict(self, state: dict) -> None:
        particles = state["particles"]
        if particles.shape[0] != self.start_noise.shape[0]:
            self.start_noise = evaluation_noise(self.config, particles.shape[0])
        self.particles = particles.detach().to(device=self.device, dtype=torch.float32).clone()
        self.step_count = int(state["step"])
        self.wall_s = float(state.get("wall_s", 0.0))
        self.data_generator.set_state(state["data_rng"])
        self.diverged = False
        self.last_record = None

    def _checked_state(self, data: dict) -> dict:
        """The checkpoint's particles: a finite float tensor [M, D] with M >= 2 and this run's D."""
        particles = data.get("particles")
        if not isinstance(particles, Tensor) or not particles.is_floating_point():
            raise CheckpointError("the checkpoint's particles are not a float tensor")
        if particles.ndim != 2 or particles.shape[0] < 2 or particles.shape[1] != self.dimension:
            raise CheckpointError(
                f"the checkpoint's particles have shape {list(particles.shape)}, not [M >= 2, {self.dimension}]"
            )
        if not torch.isfinite(particles).all():
            raise CheckpointError("the checkpoint's particles are not finite")
        return data


def build_arm(
    config: ExperimentConfig,
    *,
    points: Tensor | None = None,
    device: str | None = None,
    particles: int = EVAL_SAMPLES,
) -> ToyArm:
    """The 2D arm ``config.train.mode`` asks for: a network :class:`~drift_core.train.Trainer` or a
    :class:`ParticleTrainer` of ``particles`` particles."""
    if config.train.mode == "particles":
        return ParticleTrainer(config, points=points, device=device, particles=particles)
    return Trainer(config, points=points, device=device)


def load_arm(source, *, device: str | None = None, limits=None) -> ToyArm:
    """A 2D arm, network or particles (the checkpoint's config says which), from a checkpoint file or
    bytes; every problem of the file is a CheckpointError, an unavailable ``device`` a ConfigError
    (see :meth:`~drift_core.train.ToyArm.from_checkpoint`)."""
    if device is not None:
        try:
            select_device(device)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    data = load_checkpoint(source, kind="toy2d")
    try:
        mode = ExperimentConfig.from_dict(data.get("config")).train.mode
    except ConfigError:
        mode = "network"  # the arm's own loading says what is wrong with the configuration
    cls = ParticleTrainer if mode == "particles" else Trainer
    return cls.from_checkpoint(data, device=device, limits=limits)
