"""Drift Lab's engine: drifting and lookahead drifting fields, 2D training, metrics, CLI.

Imports torch and numpy only (never Streamlit or Plotly). The public API is re-exported here.
"""
from .config import (
    PRESETS, ConfigError, DataConfig, DriftConfig, ExperimentConfig, Limits, ModelConfig, TrainConfig, preset,
)
from .drift import DriftField, drift_weights, drifting_field
from .lookahead import LookaheadField, lookahead_field, lookahead_weights
from .loss import DriftLoss, drifting_loss
from .train import Batch, DivergedError, Lockstep, Snapshot, StepRecord, Trainer, make_drift_fn

__all__ = [
    "PRESETS", "ConfigError", "DataConfig", "DriftConfig", "ExperimentConfig", "Limits", "ModelConfig",
    "TrainConfig", "preset",
    "DriftField", "drift_weights", "drifting_field",
    "LookaheadField", "lookahead_field", "lookahead_weights",
    "DriftLoss", "drifting_loss",
    "Batch", "DivergedError", "Lockstep", "Snapshot", "StepRecord", "Trainer", "make_drift_fn",
]
