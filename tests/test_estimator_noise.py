"""The drift estimator's noise (drift_core.estimator_noise): it shrinks with the batch size and equals a
direct computation of the field."""

from __future__ import annotations

import numpy as np
import torch

from drift_core.drift import drifting_field
from drift_core.estimator_noise import estimator_noise
from drift_core.runtime import stream
from drift_core.train import Trainer
from tests.configs_support import TINY


def test_estimator_noise_shrinks_with_batch_size():
    trainer = Trainer(TINY.with_values({"width": 32}))
    trainer.run(10)
    small = estimator_noise(trainer, resamples=6, probes=24, batch_size=8)
    large = estimator_noise(trainer, resamples=6, probes=24, batch_size=512)
    assert small.samples.shape == (6, 24, 2) and small.spread.shape == (24,)
    assert np.median(small.spread) > 3 * np.median(large.spread)
    again = estimator_noise(trainer, resamples=6, probes=24, batch_size=8)
    np.testing.assert_array_equal(again.samples, small.samples)


def test_estimator_noise_matches_direct_drift_computation():
    """Baseline: each resample's V at the probes is drifting_field on [probes ; fresh batch]."""
    trainer = Trainer(TINY)
    trainer.run(3)
    noise = estimator_noise(trainer, resamples=2, probes=4, batch_size=32)
    g = stream(0, "estimator_noise")
    with torch.no_grad():
        trainer.model.eval()
        q = trainer.model(trainer.display_noise[:4])
        x = trainer.model(torch.randn(32, TINY.model.noise_dim, generator=g))
        y = trainer.sampler(32, generator=g)
        v = drifting_field(torch.cat([q, x]), y, tau=TINY.drift.tau).v[:4]
    np.testing.assert_allclose(noise.samples[0], v.double().numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(noise.mean, noise.samples.mean(0))
    expected = np.sqrt(((noise.samples - noise.mean) ** 2).sum(-1).mean(0))
    np.testing.assert_allclose(noise.spread, expected)
