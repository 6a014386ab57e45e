"""Small 2D experiment configs shared by the tests of several modules, and a short run of one of them.

``SMALL`` (test_probes.py, test_history.py); ``TINY`` (test_config.py, test_estimator_noise.py, test_export.py)
and ``run_with_snapshots``, a module-scoped fixture of a 10-step run of TINY with a snapshot every 2 steps
(import it into the test module that uses it)."""

from __future__ import annotations

import pytest

from drift_core.config import ExperimentConfig
from drift_core.train import Trainer

SMALL = ExperimentConfig().with_values({"batch_size": 48, "width": 32, "depth": 2, "dataset": "8gaussians"})

TINY = ExperimentConfig().with_values(
    {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 32, "seed": 3}
)


@pytest.fixture(scope="module")
def run_with_snapshots():
    trainer = Trainer(TINY)
    snaps, records = [trainer.snapshot(64)], []
    for _ in range(5):
        records.extend(trainer.run(2))
        snaps.append(trainer.snapshot(64))
    return trainer, snaps, records
