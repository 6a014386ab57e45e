"""Trainer faults (drift_core.train): checkpoints with malformed or oversized contents are refused, blown-up
gradients are never applied, and out of memory halves the batch, undoes a partial update, moves to the CPU
and at last gives a clear error. (Beside test_train.py because these tests share another small config.)"""

from __future__ import annotations

import pytest
import torch

from drift_core.checkpoint import CheckpointError, checkpoint_bytes, save_checkpoint
from drift_core.limits import Limits
from drift_core.train import Batch, Trainer
from tests.faults_support import SMALL, _oom_above


def test_checkpoints_with_malformed_or_oversized_contents_are_refused(tmp_path):
    base = Trainer(SMALL).state_dict()
    cases = {
        "no config": ({**base, "config": [1, 2]}, "no configuration"),
        "bad config": ({**base, "config": {"model": {"width": "wide"}}}, "configuration is not valid"),
        "missing weights": ({k: v for k, v in base.items() if k != "model"}, "has no weights"),
        "bad rng": ({**base, "data_rng": "seed"}, "malformed"),
        "nan points": (
            {
                **base,
                "config": {**base["config"], "data": {"dataset": "custom"}},
                "points": torch.tensor([[0.0, float("nan")], [1.0, 1.0]]),
            },
            "point set is not usable",
        ),
        "wrong-shape points": (
            {**base, "config": {**base["config"], "data": {"dataset": "custom"}}, "points": torch.zeros(4, 3)},
            "point set is not usable",
        ),
    }
    for name, (state, words) in cases.items():
        path = tmp_path / f"{name}.pt"
        save_checkpoint(path, state, kind="toy2d")
        with pytest.raises(CheckpointError, match=words):
            Trainer.load(path)
    huge = {
        **base,
        "config": {**base["config"], "model": {"noise_dim": 32, "width": 4096, "depth": 16, "init": "default"}},
    }
    save_checkpoint(tmp_path / "huge.pt", huge, kind="toy2d")
    with pytest.raises(CheckpointError, match="beyond this server's limits"):
        Trainer.load(tmp_path / "huge.pt", limits=Limits())  # refused before a 250M-parameter model is built
    good = tmp_path / "good.pt"
    Trainer(SMALL).save(good)
    assert Trainer.load(good.read_bytes(), limits=Limits()).config == SMALL  # uploads arrive as bytes
    assert Trainer.load(checkpoint_bytes(Trainer(SMALL).state_dict(), kind="toy2d")).config == SMALL  # downloads


def test_gradients_that_blow_up_are_never_applied():
    t = Trainer(SMALL)
    t.run(2)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.optimizer.param_groups[0]["lr"] = 1e-3
    original = t.model.forward

    def huge(noise):  # finite outputs whose gradient overflows
        return original(noise) * 1e38

    t.model.forward = huge
    record = t.step()
    assert record.diverged and all(torch.equal(t.model.state_dict()[k], v) for k, v in before.items())


# ---- out of memory ---------------------------------------------------------------------------


def test_out_of_memory_halves_the_batch_and_continues(monkeypatch):
    calls = _oom_above(monkeypatch, 100)
    t = Trainer(SMALL.with_values({"batch_size": 512}))
    r = t.step()
    assert calls == [512, 256, 128, 64]
    assert not r.diverged and r.step == 1 and r.batch_size == 64 and t.config.train.batch_size == 64
    assert "out of memory at batch size 512" in r.message and "smaller batch size" in r.message
    assert (
        len(t.fallback_notices) == 3
        and "at batch size 128 (" in t.fallback_notices[-1]
        and "continuing with batch size 64" in t.fallback_notices[-1]
    )
    assert t.step().message == ""  # the smaller setting sticks: no more failures


def test_out_of_memory_during_the_update_undoes_the_partial_update(monkeypatch):
    a = Trainer(SMALL.with_values({"batch_size": 256}))
    a.undo_updates = True  # what a GPU run does (on the CPU the per-step copy is skipped)
    real_step = a.optimizer.step
    failures = []

    def step_that_fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            with torch.no_grad():
                for p in a.model.parameters():
                    p.add_(1.0)  # a half-applied update
            raise torch.OutOfMemoryError("CUDA out of memory during the optimizer step")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(a.optimizer, "step", step_that_fails_once)
    ra = a.step()
    b = Trainer(SMALL.with_values({"batch_size": 256}))
    batch = b.draw_batch()
    b.update(b.config.with_values({"batch_size": 128}))
    rb = b.step(Batch(batch.noise[:128], batch.positives[:128]))
    assert ra.loss == rb.loss and ra.batch_size == 128
    assert all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items())


def test_out_of_memory_moves_to_the_cpu_then_gives_a_clear_error(monkeypatch):
    t = Trainer(SMALL.with_values({"batch_size": 64}))
    real_once = t._step_once

    def once(batch):  # pretend the accelerator runs out at any size; the CPU copes
        if t.device.type != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real_once(batch)

    monkeypatch.setattr(t, "_step_once", once)
    t.device = torch.device("meta")  # stands in for a GPU on this CPU-only machine
    r = t.step()
    assert t.device.type == "cpu" and r.step == 1 and "continuing on the CPU" in r.message
    # at the smallest batch on the CPU there is nothing smaller left: a clear error, nothing changed
    calls = _oom_above(monkeypatch, 1)
    u = Trainer(SMALL.with_values({"batch_size": 64}))
    before = {k: v.clone() for k, v in u.model.state_dict().items()}
    with pytest.raises(torch.OutOfMemoryError, match="smaller model or batch size"):
        u.step()
    assert calls and u.step_count == 0
    assert all(torch.equal(u.model.state_dict()[k], v) for k, v in before.items())
