"""drift_core._graph_step: the captured training step's selection, its fallback when capture fails, and
its step logic (checks, update, record) run on the CPU with the region replayed eagerly."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from drift_core._graph_step import CaptureCheckError, CapturedStep, eager_capture
from drift_core.config import ExperimentConfig
from drift_core.train import DivergedError, Trainer

SMALL = ExperimentConfig().with_values({"batch_size": 96, "width": 32, "depth": 2, "steps": 50})


def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def _plain_and(config: ExperimentConfig, capture=eager_capture) -> tuple[Trainer, Trainer]:
    """A plain trainer and a twin (same seed) whose step goes through CapturedStep with ``capture``."""
    plain, other = Trainer(config), Trainer(config)
    other.capture_cuda_graph = True
    other._captured = CapturedStep(capture)
    return plain, other


def test_on_the_cpu_the_default_is_the_plain_step_bit_for_bit():
    default, plain = Trainer(SMALL), Trainer(SMALL)
    plain.capture_cuda_graph = False
    assert not default._captured.applies(default)
    assert [(r.loss, r.drift_rms) for r in default.run(4)] == [(r.loss, r.drift_rms) for r in plain.run(4)]
    assert default._captured.captures == 0 and default._captured.disabled_reason == ""
    assert all(torch.equal(a, b) for a, b in zip(_params(default), _params(plain)))


def test_a_failed_cuda_capture_falls_back_to_the_plain_step_bit_for_bit():
    """Asking for the CUDA graph on a machine where it cannot be captured (here: the CPU) runs the plain
    step, says why, and never tries again."""
    plain, forced = Trainer(SMALL), Trainer(SMALL)
    forced.capture_cuda_graph = True
    records = forced.run(3)
    assert forced._captured.disabled_reason  # e.g. no CUDA
    assert not forced._captured.applies(forced) and forced._captured.captures == 0
    assert [(r.loss, r.drift_rms, r.step) for r in records] == [(r.loss, r.drift_rms, r.step) for r in plain.run(3)]
    assert all(torch.equal(a, b) for a, b in zip(_params(forced), _params(plain)))
    assert forced.fallback_notices == [] and forced.config.train.batch_size == SMALL.train.batch_size


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
        RuntimeError("operation not permitted when stream is capturing"),
    ],
)
def test_capture_errors_disable_capture_and_keep_the_batch(error):
    def failing(region):
        region()  # half-way: gradients exist when capture fails
        raise error

    plain, other = _plain_and(SMALL, failing)
    assert [r.loss for r in other.run(3)] == [r.loss for r in plain.run(3)]
    assert type(error).__name__ in other._captured.disabled_reason
    assert other.config.train.batch_size == SMALL.train.batch_size and other.fallback_notices == []


def test_a_replay_that_disagrees_with_the_eager_region_is_refused():
    def wrong(region):
        def replay():
            summary, grads = region()
            return summary * 1.5, grads

        return replay

    plain, other = _plain_and(SMALL, wrong)
    assert [r.loss for r in other.run(2)] == [r.loss for r in plain.run(2)]
    assert CaptureCheckError.__name__ in other._captured.disabled_reason


@pytest.mark.parametrize("K", [0, 1])
def test_replayed_step_gives_the_plain_steps_records_and_weights(K):
    """The step logic around the replay (update, record) on the CPU, region run eagerly: the same
    trajectory to fp tolerance (the drift is the dense log-domain form of the same algorithm)."""
    plain, other = _plain_and(SMALL.with_values({"K": K}))
    a, b = plain.run(6), other.run(6)
    assert other._captured.captures == 1 and other._captured.disabled_reason == ""
    for ra, rb in zip(a, b):
        assert (ra.step, ra.lr, ra.K, ra.tau, ra.batch_size, ra.diverged) == (
            rb.step,
            rb.lr,
            rb.K,
            rb.tau,
            rb.batch_size,
            rb.diverged,
        )
        assert len(rb.drift_rms) == K + 1 and rb.wall_s >= rb.step_s > 0
        assert rb.loss == pytest.approx(ra.loss, rel=1e-4)
        assert rb.drift_rms == pytest.approx(ra.drift_rms, rel=1e-4)
    for p, q in zip(_params(plain), _params(other)):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
    assert other.last_record == b[-1] and other.step_count == 6


def test_new_key_captures_again_and_lr_changes_do_not():
    plain, other = _plain_and(SMALL)
    for t in (plain, other):
        t.run(2)
        t.update(SMALL.with_values({"lr": 3e-3}))
        t.run(2)
    assert other._captured.captures == 1  # the optimizer is outside the graph: lr needs no new capture
    for t in (plain, other):
        t.update(SMALL.with_values({"lr": 3e-3, "batch_size": 48, "K": 1}))
        t.run(2)
    assert other._captured.captures == 2
    assert other.last_record.batch_size == 48 and other.last_record.K == 1
    for p, q in zip(_params(plain), _params(other)):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)


def test_loaded_state_is_trained_on_after_replay():
    plain, other = _plain_and(SMALL)
    source = Trainer(SMALL)
    source.run(3)
    other.run(2)  # captured against the old weights
    for t in (plain, other):
        t.load_state_dict(copy.deepcopy(source.state_dict()))  # (the optimizer would share the source's tensors)
    a, b = plain.run(2), other.run(2)
    assert [r.step for r in a] == [r.step for r in b] == [4, 5]
    assert b[-1].loss == pytest.approx(a[-1].loss, rel=1e-4)


def test_non_finite_outputs_diverge_without_an_update():
    plain, other = _plain_and(SMALL.with_values({"lr": 1.0}))
    results = []
    for t in (plain, other):
        t.run(1)
        with torch.no_grad():
            t.model.head.weight.mul_(1e38)  # the next forward overflows
        before = _params(t)
        record = t.step()
        results.append(record)
        assert record.diverged and t.diverged
        assert all(torch.equal(a, b) for a, b in zip(before, _params(t)))  # no update applied
        with pytest.raises(DivergedError):
            t.step()
    assert results[0].message == results[1].message and "outputs" in results[1].message
    assert results[0].drift_rms == pytest.approx(results[1].drift_rms, rel=1e-4)  # the last finite record's


def test_non_finite_gradients_diverge_before_the_update():
    plain, other = _plain_and(SMALL)
    messages = []
    for t in (plain, other):
        t.run(1)
        t.model.head.bias.register_hook(lambda g: g * math.nan)
        before = _params(t)
        record = t.step()
        messages.append(record.message)
        assert record.diverged and math.isnan(record.loss) and record.step == 1
        assert all(torch.equal(a, b) for a, b in zip(before, _params(t)))
        assert all(p.grad is None for p in t.model.parameters())
    assert messages[0] == messages[1] and "gradients" in messages[1]
