"""Drift Lab's engine: drifting and lookahead drifting fields, 2D training, metrics, CLI.

Imports torch and numpy only (never Streamlit or Plotly). The public API is re-exported here.
"""

import os as _os

# PyTorch's CPU allocator backs large tensors with transparent huge pages when THP_MEM_ALLOC_ENABLE=1
# (read once, at the process's first large allocation, so it is set here, before any). The drift
# kernel's N x (N+M) buffers then take far fewer TLB misses, and its time varies less from run to run
# (benchmarks/RESULTS.md). An explicit THP_MEM_ALLOC_ENABLE=0 in the environment keeps it off.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from .config import (
    PRESETS,
    ConfigError,
    DataConfig,
    DriftConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    preset,
)
from .drift import DriftField, drift_weights, drifting_field, drifting_field_reference
from .limits import Limits
from .lookahead import LookaheadField, lookahead_field, lookahead_weights
from .loss import DriftLoss, drifting_loss
from .records import Batch, Snapshot, StepRecord
from .run import Advance, Evaluator, Run
from .runtime import stream
from .train import DivergedError, Lockstep, Trainer, make_drift_fn

__all__ = [
    "PRESETS",
    "ConfigError",
    "DataConfig",
    "DriftConfig",
    "ExperimentConfig",
    "Limits",
    "ModelConfig",
    "TrainConfig",
    "preset",
    "DriftField",
    "drift_weights",
    "drifting_field",
    "drifting_field_reference",
    "LookaheadField",
    "lookahead_field",
    "lookahead_weights",
    "DriftLoss",
    "drifting_loss",
    "Batch",
    "DivergedError",
    "Lockstep",
    "Snapshot",
    "StepRecord",
    "Trainer",
    "make_drift_fn",
    "Run",
    "Advance",
    "Evaluator",
    "stream",
]
