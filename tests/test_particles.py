"""drift_core.particles: particle mode, the field without the network, as an arm of a Run."""

from __future__ import annotations

import math

import pytest
import torch

from drift_core.checkpoint import CheckpointError, save_checkpoint
from drift_core.config import ConfigError, ExperimentConfig
from drift_core.drift import drifting_field
from drift_core.particles import ParticleTrainer, build_arm, load_arm, particle_groups
from drift_core.run import Evaluator, Run
from drift_core.train import EVAL_SAMPLES, Trainer, evaluation_noise

SMALL = ExperimentConfig().with_values(
    {"batch_size": 64, "width": 16, "depth": 1, "dataset": "checkerboard", "mode": "particles", "steps": 100}
)


def test_particles_start_at_the_networks_initial_outputs_on_the_evaluation_noise():
    particles = ParticleTrainer(SMALL)
    network = Trainer(SMALL.with_values({"mode": "network"}))
    assert particles.particles.shape == (EVAL_SAMPLES, 2)
    torch.testing.assert_close(particles.particles, network.outputs(evaluation_noise(SMALL)), rtol=0, atol=0)
    # so their step-0 evaluations are the same numbers
    evaluator = Evaluator.for_trainer(network)
    assert evaluator(particles) == evaluator(network)
    assert Evaluator.for_trainer(particles).noise.shape == evaluator.noise.shape


@pytest.mark.parametrize("m,n", [(1024, 512), (1024, 300), (1024, 8), (1024, 2048), (10, 3), (7, 7)])
def test_groups_cover_the_particles_in_runs_of_at_most_n_as_equal_as_possible(m, n):
    groups = particle_groups(m, n)
    sizes = [g.stop - g.start for g in groups]
    assert groups[0].start == 0 and groups[-1].stop == m
    assert all(a.stop == b.start for a, b in zip(groups, groups[1:]))
    assert max(sizes) <= n
    assert max(sizes) - min(sizes) <= 1 and len(groups) == math.ceil(m / n)


@pytest.mark.parametrize("batch_size", [64, 300, 2048])
def test_a_step_moves_each_group_by_eta_times_its_field(batch_size):
    """An independent computation of one particle step: per group, drifting_field with the group as
    queries and negatives and the batch's positives, times eta."""
    config = SMALL.with_values({"batch_size": batch_size, "particle_step": 0.7, "tau": 0.1})
    arm = ParticleTrainer(config)
    before = arm.particles.clone()
    batch = arm.draw_batch()
    record = arm.step(batch)
    expected = before.clone()
    for group in particle_groups(before.shape[0], batch_size):
        expected[group] += 0.7 * drifting_field(before[group], batch.positives, tau=0.1).v
    torch.testing.assert_close(arm.particles, expected, rtol=1e-6, atol=1e-7)
    moved = (arm.particles - before) / 0.7
    assert record.step == 1 and record.loss == pytest.approx(float(moved.double().square().mean()), rel=1e-5)


def test_lookahead_k1_is_two_euler_steps_of_the_particle_flow():
    """With alpha = 1, uniform weights, no scaling and eta = 1, one lookahead K=1 particle step is two
    baseline particle steps on the same positives (reconstruction A moves the negatives with them)."""
    base = ParticleTrainer(SMALL.with_values({"particle_step": 1.0, "batch_size": 2048}))
    look = ParticleTrainer(SMALL.with_values({"particle_step": 1.0, "batch_size": 2048, "K": 1}))
    batch = base.draw_batch()
    base.step(batch)
    base.step(batch)
    look.step(batch)
    torch.testing.assert_close(look.particles, base.particles, rtol=1e-5, atol=1e-6)


def test_particle_and_network_arms_draw_the_same_batches():
    network = Trainer(SMALL.with_values({"mode": "network"}))
    particles = ParticleTrainer(SMALL)
    for _ in range(3):
        a, b = network.draw_batch(), particles.draw_batch()
        assert torch.equal(a.positives, b.positives) and torch.equal(a.noise, b.noise)
    assert torch.equal(network.display_positives, particles.display_positives)


def test_the_default_particle_step_brings_the_checkerboard_closer():
    run = Run.single(SMALL.with_values({"batch_size": 256}))
    start = run.evaluate()["run"]["energy"]
    run.advance(100)
    assert run.evaluate()["run"]["energy"] < 0.2 * start


def test_a_step_that_would_leave_the_finite_numbers_diverges_and_changes_nothing():
    arm = ParticleTrainer(SMALL)
    before = arm.particles.clone()
    batch = arm.draw_batch()
    bad = type(batch)(batch.noise, batch.positives * float("nan"))
    record = arm.step(bad)
    assert record.diverged and "NaN" in record.message and arm.diverged
    assert torch.equal(arm.particles, before) and arm.step_count == 0


def test_outputs_exist_only_for_the_start_noise():
    arm = ParticleTrainer(SMALL, particles=32)
    assert arm.outputs(evaluation_noise(SMALL, 32)).shape == (32, 2)
    with pytest.raises(ValueError, match="start noise"):
        arm.outputs(evaluation_noise(SMALL, 64))
    with pytest.raises(ValueError, match="start noise"):
        arm.outputs(torch.zeros(32, SMALL.model.noise_dim))
    assert arm.sample(10).shape == (10, 2) and arm.sample(5000).shape == (32, 2)


def test_each_class_refuses_the_other_mode_and_build_arm_picks_by_mode():
    with pytest.raises(ConfigError, match="mode"):
        Trainer(SMALL)
    with pytest.raises(ConfigError, match="mode"):
        ParticleTrainer(SMALL.with_values({"mode": "network"}))
    assert isinstance(build_arm(SMALL), ParticleTrainer)
    assert isinstance(build_arm(SMALL.with_values({"mode": "network"})), Trainer)


def test_checkpoints_round_trip_and_load_as_the_right_arm(tmp_path):
    arm = ParticleTrainer(SMALL.with_values({"dimension": 4}))
    arm.run(3)
    arm.save(tmp_path / "p.pt")
    loaded = load_arm(tmp_path / "p.pt")
    assert isinstance(loaded, ParticleTrainer) and loaded.step_count == 3
    assert torch.equal(loaded.particles, arm.particles)
    batch = arm.draw_batch()
    assert loaded.draw_batch().positives.equal(batch.positives)  # the data stream continues where it was
    arm.step(batch)
    loaded.step(batch)
    assert torch.equal(loaded.particles, arm.particles)
    with pytest.raises(CheckpointError, match="particles-mode checkpoint"):
        Trainer.load(tmp_path / "p.pt")
    network = Trainer(SMALL.with_values({"mode": "network"}))
    network.save(tmp_path / "n.pt")
    assert isinstance(load_arm(tmp_path / "n.pt"), Trainer)
    with pytest.raises(CheckpointError, match="network-mode checkpoint"):
        ParticleTrainer.load(tmp_path / "n.pt")


@pytest.mark.parametrize(
    "particles, words",
    [
        ("missing", "not a float tensor"),
        (torch.zeros(5, 3), "shape"),
        (torch.full((5, 2), float("inf")), "not finite"),
        (torch.zeros(5, 2, dtype=torch.long), "not a float tensor"),
    ],
)
def test_unusable_particles_in_a_checkpoint_are_refused(tmp_path, particles, words):
    arm = ParticleTrainer(SMALL)
    state = arm.state_dict()
    if particles == "missing":
        del state["particles"]
    else:
        state["particles"] = particles
    save_checkpoint(tmp_path / "bad.pt", state, kind="toy2d")
    with pytest.raises(CheckpointError, match=words):
        load_arm(tmp_path / "bad.pt")


def test_particles_in_d_dimensions_are_drawn_and_evaluated_on_the_plane():
    arm = ParticleTrainer(SMALL.with_values({"dimension": 8}))
    assert arm.particles.shape == (EVAL_SAMPLES, 8)
    arm.run(2)
    snap = arm.snapshot()
    assert snap.generated.shape == (512, 2) and snap.v.shape == (512, 2)
    metrics = Evaluator.for_trainer(arm)(arm)
    assert {"energy", "sliced_w2", "off_plane_rms"} <= set(metrics)
