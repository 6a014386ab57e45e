"""The bounded History (drift_core.history): rows and metrics thinned to their bounds, snapshots kept every
n steps."""

from __future__ import annotations

from drift_core.history import History
from drift_core.train import Trainer
from tests.configs_support import SMALL


def _record(step):
    from drift_core.train import StepRecord

    return StepRecord(
        step=step,
        loss=1.0 / step,
        drift_rms=(0.1,),
        wall_s=step * 0.01,
        step_s=0.01,
        lr=1e-3,
        K=0,
        tau=0.05,
        batch_size=8,
    )


def test_history_is_bounded_and_thins_rows():
    h = History(max_records=50, max_metrics=5, max_snapshots=3, snapshot_every=10)
    h.add_records(_record(s) for s in range(1, 201))
    assert len(h) == 50 and h.records[0].step == 151 and h.records[-1].step == 200
    rows = h.record_rows(max_rows=10)
    assert len(rows) == 10 and rows[-1]["step"] == 200 and rows[0]["step"] == 151
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    for s in range(8):
        h.add_metrics(s, s * 0.1, {"energy": float(s)})
    assert [r["step"] for r in h.metric_rows()] == [3, 4, 5, 6, 7]


def test_history_keeps_snapshots_every_n_steps():
    trainer = Trainer(SMALL)
    h = History(max_snapshots=2, snapshot_every=3)
    kept = []
    for _ in range(7):
        trainer.step()
        kept.append(h.add_snapshot(trainer.snapshot(16)))
    assert kept == [True, False, False, True, False, False, True]
    assert [s.step for s in h.snapshots] == [4, 7]
    h.clear()
    assert len(h) == 0 and not h.snapshots


def test_lookups_at_a_step_give_the_newest_entry_not_after_it():
    h = History(snapshot_every=1)
    h.add_records(_record(s) for s in (1, 2, 5, 9))
    for s in (0, 4):
        h.add_metrics(s, s * 0.1, {"energy": 10.0 - s})
    assert h.record_at(0) is None and h.record_at(4).step == 2 and h.record_at(100).step == 9
    assert h.metrics_at(3) == {"energy": 10.0} and h.metrics_at(4) == {"energy": 6.0}
    assert History().metrics_at(5) == {} and h.snapshot_at(3) is None
