"""Estimator noise: how much the drifting field V at fixed particles changes when the mini-batch is
redrawn. This is what the batch size N controls: V is estimated from N generated negatives and N data
positives, so its Monte-Carlo spread shrinks roughly like 1 / sqrt(N).

For probe particles q_1..q_m (fixed) and R resamples r, each resample draws a fresh batch (N noise
vectors -> N generated points x^r, and N positives y^r) and evaluates the trainer's current drift
function (baseline or lookahead, its temperature(s) and options) at the probes:

    V^r(q) = drift_fn([q_chunk ; x^r], y^r).v[:len(q_chunk)]

The probes are evaluated in chunks of at most max(1, N // 8), so they are never more than about a ninth
of the negatives the estimator sees (a chunk of probes is itself part of the negative set, self-masked,
exactly as a generated sample is in training). The result is the mean over r and the per-particle
spread (the RMS over r of ||V^r(q) - mean V(q)||).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .runtime import stream

__all__ = ["EstimatorNoise", "estimator_noise"]


@dataclass(frozen=True)
class EstimatorNoise:
    """``probes`` [m, 2]; ``samples`` [R, m, 2] (V per resample); ``mean`` [m, 2]; ``spread`` [m]
    (RMS deviation of V over resamples, data units); ``mean_norm`` [m] (||mean V||); ``batch_size`` N."""

    probes: np.ndarray
    samples: np.ndarray
    mean: np.ndarray
    spread: np.ndarray
    mean_norm: np.ndarray
    batch_size: int

    @property
    def noise_to_signal(self) -> float:
        """median spread / median ||mean V|| (how noisy the field is relative to its size)."""
        return float(np.median(self.spread) / max(float(np.median(self.mean_norm)), 1e-12))


@torch.no_grad()
def estimator_noise(
    trainer, *, resamples: int = 8, probes: int = 64, batch_size: int | None = None, seed: int = 0
) -> EstimatorNoise:
    """Redraw the batch ``resamples`` times at the trainer's current weights and measure the spread of V
    at ``probes`` fixed display particles (the first ``probes`` of the trainer's display noise).

    Args:
        trainer: a :class:`~drift_core.train.Trainer` (not modified: its data stream is not used).
        resamples: R >= 2 fresh batches.
        probes: m particles to measure at.
        batch_size: N (default: the trainer's current batch size).
        seed: seeds the R batches (the same seed gives the same picture).
    """
    if resamples < 2:
        raise ValueError("need at least 2 resamples to measure a spread")
    n = int(batch_size or trainer.config.train.batch_size)
    if n < 2:
        raise ValueError("batch size must be at least 2")
    model, device = trainer.model, trainer.device
    was_training = model.training
    model.eval()
    try:
        m = max(1, min(probes, trainer.display_noise.shape[0]))
        q = model(trainer.display_noise[:m].to(device)).float()
        chunk = max(1, n // 8)
        generator = stream(seed, "estimator_noise")
        samples = torch.empty(resamples, m, 2, dtype=torch.float64)
        noise_dim = trainer.config.model.noise_dim
        for r in range(resamples):
            noise = torch.randn(n, noise_dim, generator=generator)
            positives = trainer.sampler(n, generator=generator).to(device).float()
            x = model(noise.to(device)).float()
            for start in range(0, m, chunk):
                qc = q[start : start + chunk]
                field = trainer.drift_fn(torch.cat([qc, x]), positives)
                samples[r, start : start + qc.shape[0]] = field.v[: qc.shape[0]].double().cpu()
    finally:
        model.train(was_training)
    mean = samples.mean(0)
    spread = (samples - mean).square().sum(-1).mean(0).sqrt()
    return EstimatorNoise(
        probes=q.double().cpu().numpy(),
        samples=samples.numpy(),
        mean=mean.numpy(),
        spread=spread.numpy(),
        mean_norm=mean.norm(dim=-1).numpy(),
        batch_size=n,
    )
