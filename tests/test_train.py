"""Trainer: reproducibility, learning, live updates, lock-step, divergence, checkpoints."""

from __future__ import annotations

import pickle

import pytest
import torch

from drift_core.checkpoint import CheckpointError
from drift_core.config import ConfigError, ExperimentConfig, preset
from drift_core.drift import drifting_field
from drift_core.metrics import energy_distance
from drift_core.runtime import make_generator
from drift_core.train import DivergedError, Lockstep, Trainer, make_drift_fn

SMALL = ExperimentConfig().with_values({"batch_size": 128, "width": 64, "depth": 2, "steps": 50})


def test_same_seed_gives_identical_records():
    a, b = Trainer(SMALL), Trainer(SMALL)
    ra, rb = a.run(5), b.run(5)
    assert [(r.loss, r.drift_rms) for r in ra] == [(r.loss, r.drift_rms) for r in rb]
    c = Trainer(SMALL.with_values({"seed": 1}))
    assert [r.loss for r in c.run(5)] != [r.loss for r in ra]


@pytest.mark.parametrize("method", ["baseline", "lookahead"])
def test_training_lowers_energy_distance(method):
    cfg = ExperimentConfig().with_values({"dataset": "8gaussians", "batch_size": 256, "method": method, "K": 1})
    t = Trainer(cfg)
    ref = t.sampler(1024, generator=make_generator(99))
    before = energy_distance(t.sample(1024), ref)
    t.run(300)
    after = energy_distance(t.sample(1024), ref)
    assert after < 0.25 * before, (before, after)


def test_record_has_one_drift_rms_per_term():
    t = Trainer(SMALL.with_values({"method": "lookahead", "K": 3}))
    r = t.step()
    assert len(r.drift_rms) == 4 and r.K == 3 and r.step == 1 and r.wall_s > 0


def test_live_update_keeps_weights_and_reset_fields_refuse():
    t = Trainer(SMALL)
    t.run(3)
    w = t.model.head.weight.clone()
    changed = t.update(SMALL.with_values({"method": "lookahead", "K": 2, "lr": 5e-3, "batch_size": 64}))
    assert set(changed) == {"K", "lr", "batch_size"}
    assert torch.equal(t.model.head.weight, w) and t.step_count == 3
    r = t.step()
    assert r.K == 2 and r.batch_size == 64 and t.optimizer.param_groups[0]["lr"] == 5e-3
    with pytest.raises(ConfigError, match="reset"):
        t.update(SMALL.with_values({"dataset": "moons"}))


def test_lockstep_shares_batches_and_k0_matches_baseline():
    cfgs = {
        "a": SMALL,
        "b": SMALL.with_values({"method": "lookahead", "K": 0}),
        "c": SMALL.with_values({"method": "lookahead", "K": 1}),
    }
    run = Lockstep(cfgs)
    for _ in range(4):
        recs = run.step()
    assert recs["a"].loss == recs["b"].loss
    assert recs["a"].loss != recs["c"].loss
    solo = Trainer(SMALL)
    solo_records = solo.run(4)
    assert solo_records[-1].loss == recs["a"].loss  # same stream as a lone trainer with the same seed
    with pytest.raises(ConfigError):
        Lockstep({"a": SMALL, "b": SMALL.with_values({"seed": 3})})


def test_divergence_pauses_and_keeps_last_finite_state():
    t = Trainer(SMALL.with_values({"lr": 1.0}))
    with torch.no_grad():
        t.model.head.weight.mul_(1e38)  # force overflow on the next forward
    r = t.step()
    assert r.diverged and "NaN" in r.message
    with pytest.raises(DivergedError):
        t.step()
    t2 = Trainer(SMALL)
    t2.run(2)
    t2.optimizer.param_groups[0]["lr"] = 1e30
    records = t2.run(10)
    assert records[-1].diverged
    for v in t2.model.state_dict().values():  # no non-finite update was ever applied
        assert torch.isfinite(v).all()


def test_snapshot_shapes():
    t = Trainer(SMALL.with_values({"method": "lookahead", "K": 2}))
    s = t.snapshot(100)
    assert s.generated.shape == (100, 2) and len(s.terms) == 3 and len(s.points) == 3
    assert abs((s.v_pos - s.v_neg) - s.terms[0]).max() < 1e-5


def test_start_scenarios_place_initial_outputs():
    far = Trainer(preset("bimodal_far").with_values({"batch_size": 64}))
    collapsed = Trainer(preset("bimodal_collapsed").with_values({"batch_size": 64}))
    between = Trainer(preset("bimodal_between").with_values({"batch_size": 64}))
    assert far.sample(256).norm(dim=1).min() > 2.0
    assert (collapsed.sample(256).mean(0) - torch.tensor([-0.6, 0.0])).norm() < 0.1
    assert between.sample(256).mean(0).norm() < 0.1


def test_checkpoint_round_trip_continues_identically(tmp_path):
    a = Trainer(SMALL)
    a.run(3)
    a.save(tmp_path / "c.pt")
    b = Trainer.load(tmp_path / "c.pt")
    assert b.step_count == 3
    assert [r.loss for r in a.run(3)] == [r.loss for r in b.run(3)]


def test_bad_checkpoints_are_refused_with_a_message(tmp_path):
    a = Trainer(SMALL)
    a.save(tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    cases = {
        "empty.pt": b"",
        "text.pt": b"hello, not a checkpoint",
        "truncated.pt": data[: len(data) // 2],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError):
            Trainer.load(tmp_path / name)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a Drift Lab checkpoint"):
        Trainer.load(tmp_path / "other.pt")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "drift-lab-checkpoint", "payload": _Exploit(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        Trainer.load(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError):
        Trainer.load(path)
    assert not marker.exists()


def test_checkpoint_of_other_architecture_is_refused(tmp_path):
    a = Trainer(SMALL)
    state = a.state_dict()
    state["config"]["model"]["width"] = 32  # config says 32, weights are 64 wide
    from drift_core.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "mismatch.pt", state, kind="toy2d")
    with pytest.raises(CheckpointError, match="do not fit"):
        Trainer.load(tmp_path / "mismatch.pt")
    save_checkpoint(tmp_path / "img.pt", a.state_dict(), kind="images")
    with pytest.raises(CheckpointError, match="images"):
        Trainer.load(tmp_path / "img.pt")


def test_drift_fn_follows_config():
    cfg = SMALL.with_values({"method": "lookahead", "K": 2, "multi_temperature": True})
    fn = make_drift_fn(cfg.drift)
    x = torch.randn(16, 2)
    out = fn(x, torch.randn(16, 2))
    assert len(out.terms) == 3 and out.fields[0].raw_rms.shape == (3,)


@pytest.mark.parametrize("name", ["bimodal_between", "bimodal_far", "bimodal_collapsed"])
def test_paper_start_cases_all_reach_the_target(name):
    """The paper's Fig. 3: from between the modes, far away, or collapsed onto one mode, q reaches p."""
    t = Trainer(preset(name).with_values({"width": 64, "batch_size": 256}))
    ref = t.sampler(1024, generator=make_generator(5))
    before = energy_distance(t.sample(1024), ref)
    t.run(200)
    assert energy_distance(t.sample(1024), ref) < 0.2 * before


def test_models_built_at_once_in_threads_get_their_own_seeds_weights():
    """Initialisation draws from the seed's own generator, not torch's global one (app sessions build
    models in threads of one server at the same time)."""
    import threading

    from drift_core.config import ModelConfig
    from drift_core.models import build_generator

    config = ModelConfig(width=64, depth=2)
    alone = {seed: build_generator(config, seed=seed).state_dict() for seed in range(6)}
    built: dict[int, dict] = {}

    def build(seed):
        for _ in range(20):
            torch.rand(1000)  # other threads using the global generator meanwhile
            built[seed] = build_generator(config, seed=seed).state_dict()

    threads = [threading.Thread(target=build, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, state in alone.items():
        assert all(torch.equal(state[k], built[seed][k]) for k in state), seed
    assert not torch.equal(alone[0]["body.0.weight"], alone[1]["body.0.weight"])


# ---- data embedded in D dimensions ---------------------------------------------------------------------


def test_training_in_d_dimensions_draws_and_samples_on_the_plane():
    flat = Trainer(SMALL.with_values({"dataset": "8gaussians"}))
    deep = Trainer(SMALL.with_values({"dataset": "8gaussians", "dimension": 8, "embedding_noise": 0.02}))
    assert deep.model.head.out_features == 8 and deep.draw_batch().positives.shape == (128, 8)
    # the display data projects back onto the same 2D sample a D = 2 run draws
    torch.testing.assert_close(deep.project(deep.display_positives), flat.display_positives, rtol=0, atol=1e-5)
    off_plane = deep.embedding.off_plane(deep.display_positives)
    assert float(off_plane.std()) == pytest.approx(0.02, rel=0.1)
    record = deep.step()
    assert record.step == 1 and record.loss > 0
    snap = deep.snapshot(64)
    assert snap.generated.shape == snap.positives.shape == snap.v.shape == (64, 2)
    assert all(t.shape == (64, 2) for t in snap.terms + snap.points)
    assert deep.sample(100).shape == (100, 2)


def test_training_in_d_dimensions_lowers_the_projected_energy_distance():
    cfg = ExperimentConfig().with_values({"dataset": "8gaussians", "batch_size": 256, "dimension": 16})
    t = Trainer(cfg)
    ref = t.sampler(1024, generator=make_generator(99))
    before = energy_distance(t.sample(1024), ref)
    t.run(200)
    assert energy_distance(t.sample(1024), ref) < 0.25 * before


def test_a_start_scenario_places_the_outputs_in_the_datas_plane():
    flat = Trainer(SMALL.with_values({"dataset": "bimodal", "init": "far"}))
    deep = Trainer(SMALL.with_values({"dataset": "bimodal", "init": "far", "dimension": 6}))
    torch.testing.assert_close(
        torch.as_tensor(deep.snapshot().generated).mean(0),
        torch.as_tensor(flat.snapshot().generated).mean(0),
        rtol=0,
        atol=0.1,
    )


def test_the_drift_function_passes_kernel_and_floor():
    x, y = torch.randn(20, 2, generator=make_generator(0)), torch.randn(20, 2, generator=make_generator(1))
    for changes in ({"kernel": "gaussian"}, {"affinity_floor": 1e-6}):
        drift = SMALL.with_values(changes).drift
        expected = drifting_field(x, y, tau=drift.tau, mask_diagonal=True, **changes).v
        assert torch.equal(make_drift_fn(drift)(x, y).v, expected)
