"""Probes (drift_core.probes: grid field, density, step inspection, the kernel in D dimensions), checked
against drift_core's own functions and an independent loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from drift_core.drift import drift_weights, drifting_field
from drift_core.lookahead import lookahead_field
from drift_core.particles import ParticleTrainer
from drift_core.probes import (
    KERNEL_VARIANTS,
    density_on_grid,
    effective_neighbours,
    field_on_grid,
    grid_points,
    inspect_step,
    neighbours_by_dimension,
)
from drift_core.runtime import make_generator
from drift_core.train import Trainer, make_drift_fn
from tests.configs_support import SMALL
from tests.reference_drift import reference_drift


def test_grid_points_layout():
    g = grid_points((-1.0, 1.0, -2.0, 2.0), 5)
    assert g.shape == (25, 2)
    cube = g.reshape(5, 5, 2)
    assert torch.allclose(cube[0, :, 0], torch.linspace(-1, 1, 5))  # x varies along a row
    assert torch.allclose(cube[:, 0, 1], torch.linspace(-2, 2, 5))  # y varies down the columns


def test_field_on_grid_matches_loop_reference(gen):
    query = torch.rand(6, 2, generator=gen) * 2 - 1
    generated = torch.randn(7, 2, generator=gen) * 0.5
    positives = torch.randn(5, 2, generator=gen) * 0.5
    drift = SMALL.drift.__class__(tau=0.3)
    v = field_on_grid(query, generated, positives, drift)
    ref = reference_drift(
        query.double().tolist(), positives.double().tolist(), generated.double().tolist(), tau=0.3, mask_diagonal=False
    )
    assert np.allclose(v.numpy(), np.array(ref), atol=1e-5)


def test_density_integrates_to_one_and_peaks_at_the_cluster():
    rng = np.random.default_rng(0)
    pts = rng.normal([0.3, -0.2], 0.1, size=(400, 2))
    bounds = (-1.5, 1.5, -1.5, 1.5)
    d = density_on_grid(pts, bounds, 121)
    cell = (3 / 120) ** 2
    assert d.sum() * cell == pytest.approx(1.0, rel=0.03)
    j, i = np.unravel_index(d.argmax(), d.shape)
    xs = np.linspace(-1.5, 1.5, 121)
    assert abs(xs[i] - 0.3) < 0.08 and abs(xs[j] + 0.2) < 0.08
    # brute-force KDE at one grid point with the same bandwidth
    h = 0.05
    d_h = density_on_grid(pts, bounds, 121, bandwidth=h)
    z = np.array([xs[60], xs[50]])
    brute = np.mean(np.exp(-0.5 * ((pts - z) ** 2).sum(1) / h**2)) / (2 * math.pi * h * h)
    assert d_h[50, 60] == pytest.approx(brute, rel=1e-9)


def test_effective_neighbours():
    assert effective_neighbours(np.array([0, 0, 3.0])) == pytest.approx(1.0)
    assert effective_neighbours(np.ones(7)) == pytest.approx(7.0)
    assert effective_neighbours(np.zeros(3)) == 0.0


@pytest.mark.parametrize("method", ["baseline", "lookahead"])
def test_inspect_step_agrees_with_the_trainer_and_the_fields(method):
    cfg = SMALL.with_values({"method": method, "K": 2})
    trainer, twin = Trainer(cfg), Trainer(cfg)
    batch = trainer.draw_batch(make_generator(5))
    ins = inspect_step(trainer, batch)
    # the step taken is a real trainer step: same loss and same weights as stepping a twin
    rec = twin.step(batch)
    assert ins.record.loss == pytest.approx(rec.loss, rel=1e-6)
    assert ins.loss == pytest.approx(rec.loss, rel=1e-5)
    with torch.no_grad():
        twin_after = twin.model(batch.noise).numpy()
    assert np.allclose(ins.outputs_after, twin_after, atol=1e-6)
    assert np.allclose(ins.achieved, ins.outputs_after - ins.outputs)
    # the field is the lookahead field of the outputs
    x = torch.as_tensor(ins.outputs)
    la = lookahead_field(x, torch.as_tensor(ins.positives), K=cfg.drift.K, tau=cfg.drift.tau)
    assert np.allclose(ins.v, la.v.numpy(), atol=1e-6)
    assert len(ins.points) == cfg.drift.K + 1 and np.allclose(ins.points[0], ins.outputs)
    assert np.allclose(ins.targets, ins.outputs + ins.v)
    # the kernel weights reproduce the base term: V0 = W+ y - W- x  (rows of W+ and W- sum equally)
    assert np.allclose(ins.w_pos.sum(1), ins.w_neg.sum(1), rtol=1e-4)
    v0 = ins.w_pos @ ins.positives - ins.w_neg @ ins.outputs
    assert np.allclose(v0, ins.terms[0], atol=1e-5)
    assert np.allclose(ins.v_pos - ins.v_neg, ins.terms[0], atol=1e-6)
    assert np.all(np.diag(ins.w_neg) == 0)
    assert ins.step == 1 and trainer.step_count == 1


def test_inspect_step_of_a_trained_model_moves_towards_targets():
    trainer = Trainer(SMALL.with_values({"lr": 3e-3}))
    ins = inspect_step(trainer)
    # one Adam step moves outputs in the direction of the drift on average
    assert ins.achieved_fraction > 0
    assert ins.tracking_error >= 0


def test_field_on_grid_is_zero_when_generated_equals_data(gen):
    pts = torch.randn(30, 2, generator=gen)
    v = field_on_grid(grid_points((-1, 1, -1, 1), 4), pts, pts.clone(), SMALL.drift)
    assert torch.allclose(v, torch.zeros_like(v), atol=1e-6)
    # and it is drifting_field with the generated set as unmasked negatives
    q = grid_points((-1, 1, -1, 1), 3)
    other = torch.randn(30, 2, generator=gen)
    direct = drifting_field(q, pts, other, tau=SMALL.drift.tau, mask_diagonal=False).v
    assert torch.allclose(field_on_grid(q, other, pts, SMALL.drift), direct)
    assert make_drift_fn(SMALL.drift) is not None


# ---- the kernel in D dimensions ---------------------------------------------------------------------


def _sets():
    g = make_generator(3)
    return torch.rand(120, 2, generator=g) * 2 - 1, torch.rand(100, 2, generator=g) * 2 - 1


def test_neighbours_at_d_2_are_the_effective_neighbours_of_the_attraction_weights():
    """An independent computation at D = 2: effective neighbours of each particle's W+ row (one
    temperature) or of sum_tau W+_tau / RMS(V_tau) (three)."""
    generated, positives = _sets()
    drift = SMALL.drift.__class__(tau=0.1)
    result = neighbours_by_dimension(generated, positives, drift, dimensions=(2,))
    w = drift_weights(generated, positives, tau=0.1).w_pos
    expected = np.median([effective_neighbours(row) for row in w.double().numpy()])
    assert result.neighbours["raw distances"][0] == pytest.approx(expected, rel=1e-6)
    combined = 0
    for tau in (0.04, 0.1, 0.4):
        f = drifting_field(generated, positives, tau=tau)
        combined = combined + drift_weights(generated, positives, tau=tau).w_pos.double() / f.v.square().mean().sqrt()
    expected_multi = np.median([effective_neighbours(row) for row in combined.numpy()])
    assert result.neighbours["multi-temperature"][0] == pytest.approx(expected_multi, rel=1e-5)
    assert all(o == (pytest.approx(1.0),) for o in result.overlap.values())
    assert result.positives == 100


def test_without_noise_the_embedding_changes_nothing_and_with_noise_the_weights_flatten():
    """Rotations keep distances, so with no noise every D sees the 2D weights; the noise in the extra
    coordinates spreads the weights (more neighbours, less overlap with the 2D picture)."""
    generated, positives = _sets()
    drift = SMALL.drift.__class__(tau=0.05)
    quiet = neighbours_by_dimension(generated, positives, drift, dimensions=(2, 16), embedding_noise=0.0)
    for label in KERNEL_VARIANTS:
        low, high = quiet.neighbours[label]
        assert high == pytest.approx(low, rel=1e-3) and quiet.overlap[label][1] == pytest.approx(1.0, abs=1e-3)
    noisy = neighbours_by_dimension(generated, positives, drift, dimensions=(2, 64), embedding_noise=0.05)
    for label in KERNEL_VARIANTS:
        assert noisy.overlap[label][1] < 0.8
    assert (
        noisy.neighbours["normalised, multi-temperature"][1] > 2 * noisy.neighbours["normalised, multi-temperature"][0]
    )
    assert all(0 < f <= 1 for label in KERNEL_VARIANTS for f in noisy.flatness(label))
    assert noisy.dimensions == (2, 64) and set(noisy.neighbours) == set(KERNEL_VARIANTS)
    with pytest.raises(ValueError, match="at least 2"):
        neighbours_by_dimension(generated, positives, drift, dimensions=(1, 4))


@pytest.mark.parametrize("changes", [{"kernel": "gaussian"}, {"affinity_floor": 1e-6}])
def test_field_on_grid_follows_the_kernel_and_the_floor(gen, changes):
    query = torch.rand(6, 2, generator=gen) * 2 - 1
    generated, positives = torch.randn(7, 2, generator=gen) * 0.5, torch.randn(5, 2, generator=gen) * 0.5
    drift = SMALL.drift.__class__(tau=0.3, **changes)
    v = field_on_grid(query, generated, positives, drift)
    ref = reference_drift(
        query.double().tolist(),
        positives.double().tolist(),
        generated.double().tolist(),
        tau=0.3,
        mask_diagonal=False,
        **changes,
    )
    assert np.allclose(v.numpy(), np.array(ref), atol=1e-5)


def test_inspect_step_in_d_dimensions_draws_the_plane_and_keeps_the_full_loss():
    cfg = SMALL.with_values({"dimension": 6})
    trainer, twin = Trainer(cfg), Trainer(cfg)
    batch = trainer.draw_batch(make_generator(5))
    ins = inspect_step(trainer, batch)
    assert ins.outputs.shape == ins.v.shape == ins.positives.shape == (48, 2) and ins.w_pos.shape == (48, 48)
    assert ins.loss == pytest.approx(twin.step(batch).loss, rel=1e-5)
    assert np.allclose(ins.positives, trainer.project(batch.positives).numpy(), atol=1e-6)
    with pytest.raises(TypeError, match="network"):
        inspect_step(ParticleTrainer(cfg.with_values({"mode": "particles"})))
