"""A Run going back (drift_core.run): divergence pauses at the newest kept finite state, and a step back
replays the same batches. (Beside test_run.py because these tests share another small config.)"""

from __future__ import annotations

import pytest
import torch

from drift_core.run import Run
from drift_core.train import DivergedError
from tests.faults_support import SMALL


def test_divergence_pauses_and_goes_back_to_the_newest_kept_finite_state():
    """A blow-up never applies a non-finite update; the run goes back to its newest kept state (the
    one tape of states, kept every TAPE_EVERY steps), pauses, and steps further back on request."""
    run = Run.single(SMALL.with_values({"steps": 1000}))
    run.advance(12)
    assert run.kept_steps() == [0, 10]
    kept = {k: v.clone() for k, v in run.tapes["run"].states[10]["model"].items()}
    with torch.no_grad():  # what a far too large learning rate does to the weights
        for param in run.trainer.model.parameters():
            param.mul_(1e30)
    out = run.advance(5)
    assert out.paused_reason and "diverged at step 13" in out.paused_reason and "back to step 10" in out.paused_reason
    assert run.step == 10 and run.trainer.diverged and not run.playing
    assert all(torch.equal(run.trainer.model.state_dict()[k], v) for k, v in kept.items())
    assert run.history.records[-1].step <= 10
    with pytest.raises(DivergedError):
        run.trainer.step()
    assert run.step_back() == 0 and not run.trainer.diverged and run.step == 0
    with pytest.raises(ValueError, match="reset"):
        run.step_back()


def test_step_back_replays_the_same_batches():
    run = Run.single(SMALL.with_values({"steps": 1000}))
    run.advance(20)
    first = [r.loss for r in run.history.records]
    assert run.step_back() == 10
    run.advance(10)
    assert [r.loss for r in run.history.records] == first
