"""The Inspector's own rules (drift_views.inspector) without Streamlit: which run it inspects."""

from __future__ import annotations

from drift_core.config import ExperimentConfig
from drift_views.inspector import inspected_config


def test_the_inspector_inspects_the_network_on_2d_data_with_its_own_batch_and_says_so():
    config, note = inspected_config(ExperimentConfig().with_values({"K": 2, "tau": 0.2}), 48)
    assert (config.drift.K, config.drift.tau, config.train.batch_size) == (2, 0.2, 48) and note == ""
    assert config.train.steps > 10_000  # a budget the step-by-step Inspector never reaches
    for changed in ({"mode": "particles"}, {"dimension": 8}):
        config, note = inspected_config(ExperimentConfig().with_values(changed), 16)
        assert (config.train.mode, config.data.dimension) == ("network", 2) and "network on 2D data" in note
