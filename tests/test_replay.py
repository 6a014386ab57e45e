"""Replay tape and "fork from here": a fork with the same settings continues exactly like the original;
a fork with new live settings uses them; reset fields are refused; the tape is bounded."""

from __future__ import annotations

import pytest
import torch

from drift_core.config import ConfigError, ExperimentConfig
from drift_core.replay import StateTape, fork_at
from drift_core.train import Trainer

TINY = ExperimentConfig().with_values(
    {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 32, "seed": 5}
)


def test_fork_with_same_settings_replays_the_original_exactly():
    trainer = Trainer(TINY)
    tape = StateTape()
    trainer.run(3)
    assert tape.record(trainer) and not tape.record(trainer)  # once per step
    trainer.run(4)
    original = trainer.sample(64)
    fork = fork_at(tape, 3, TINY, like=trainer)
    assert fork.step_count == 3
    start = fork.sample(64)
    fork.run(4)
    torch.testing.assert_close(fork.sample(64), original, rtol=0, atol=0)
    # training a fork does not touch the tape: forking again starts from the same state
    again = fork_at(tape, 3, TINY, like=trainer)
    assert again.step_count == 3
    torch.testing.assert_close(again.sample(64), start, rtol=0, atol=0)


def test_fork_with_new_live_settings_branches_off():
    trainer = Trainer(TINY)
    tape = StateTape()
    trainer.run(2)
    tape.record(trainer)
    trainer.run(3)
    branch = fork_at(tape, 2, TINY.with_values({"method": "lookahead", "K": 2, "batch_size": 64}), like=trainer)
    record = branch.step()
    assert record.step == 3 and record.K == 2 and record.batch_size == 64 and len(record.drift_rms) == 3
    assert not torch.equal(branch.sample(64), trainer.sample(64))
    with pytest.raises(ConfigError, match="cannot fork"):
        fork_at(tape, 2, TINY.with_values({"width": 32}), like=trainer)
    with pytest.raises(KeyError):
        fork_at(tape, 99, TINY, like=trainer)


def test_tape_is_bounded_and_finds_nearest_step():
    trainer = Trainer(TINY)
    tape = StateTape(max_states=3)
    for _ in range(5):
        trainer.run(2)
        tape.record(trainer)
    assert tape.steps == [6, 8, 10]
    assert tape.nearest(9) == 8 and tape.nearest(1) == 6 and tape.nearest(100) == 10
    assert StateTape().nearest(3) is None
    with pytest.raises(ValueError):
        StateTape(0)


def test_tape_is_bounded_in_bytes_and_keeps_the_newest_state():
    trainer = Trainer(TINY)
    one = StateTape()
    one.record(trainer)
    size = one.nbytes
    params = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
    assert size >= params  # the weights at least (Adam moments appear after the first step)
    tape = StateTape(max_states=100, max_bytes=int(3.5 * size))
    for _ in range(6):
        trainer.run(1)
        tape.record(trainer)
    assert len(tape) < 6  # older states were dropped to stay within the bytes
    assert tape.nbytes <= tape.max_bytes or len(tape) == 1
    assert tape.steps[-1] == 6 and tape.steps == sorted(tape.steps)
    assert tape.nbytes == sum(tape._sizes.values())
    tiny = StateTape(max_bytes=1)  # even below one state's size the newest is kept
    tiny.record(trainer)
    assert tiny.steps == [6]
    tiny.clear()
    assert tiny.nbytes == 0 and len(tiny) == 0
