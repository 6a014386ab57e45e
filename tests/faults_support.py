"""A small run config and an injected out-of-memory error, shared by the fault tests of the trainer
(test_train_faults.py), the run (test_run_step_back.py) and the command line (test_cli.py)."""

from __future__ import annotations

import torch

from drift_core.config import ExperimentConfig

SMALL = ExperimentConfig().with_values({"batch_size": 128, "width": 32, "depth": 2, "steps": 20})


def _oom_above(monkeypatch, limit: int):
    """Make every drift computation on more than ``limit`` samples fail like a GPU out of memory."""
    import drift_core.train as train_module

    real = train_module.drifting_loss
    calls = []

    def fake(x, positives, drift_fn):
        calls.append(x.shape[0])
        if x.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return real(x, positives, drift_fn)

    monkeypatch.setattr(train_module, "drifting_loss", fake)
    return calls
