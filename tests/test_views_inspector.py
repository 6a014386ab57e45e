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


def test_the_stage_buttons_stay_within_the_stages_and_a_click_picks_the_nearest_particle():
    from drift_core.run import Run
    from drift_views.inspector import STAGES, InspectorState

    run = Run.single(
        ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "batch_size": 24})
    )
    state = InspectorState()
    state.next_step(run)
    state.move_stage(-1)
    assert state.stage == 0
    for _ in range(len(STAGES) + 2):
        state.move_stage(1)
    assert state.stage == len(STAGES) - 1
    outputs = state.inspection.outputs
    x, y = outputs[7]
    state.pick({"x": float(x) + 1e-6, "y": float(y)})
    distances = ((outputs - outputs[7]) ** 2).sum(1)
    assert state.particle == int(distances.argmin()) and state.lens_particle() == state.particle
    state.particle = 500  # a particle of an earlier, larger batch
    assert state.lens_particle() == len(outputs) - 1 == state.particle
