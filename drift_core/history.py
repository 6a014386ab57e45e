"""Bounded training history: step records, metric evaluations and occasional snapshots.

A live app must not grow without bound, so every series is a ring buffer
(``collections.deque(maxlen=...)``): the oldest entries drop off when a buffer is full. The same object
backs the metric curves and the replay view (``snapshots`` keeps every ``snapshot_every``-th frame's
snapshot with the step it shows). A 2D run keeps :class:`~drift_core.records.StepRecord` and
:class:`~drift_core.records.Snapshot`, an image run its own types (any record with ``step`` and
``as_row()``, any snapshot with ``step``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .records import Snapshot, StepRecord

__all__ = ["History", "MetricPoint"]


@dataclass(frozen=True)
class MetricPoint:
    """Metrics of the generated distribution at one step (``wall_s`` is cumulative training time)."""

    step: int
    wall_s: float
    values: dict[str, float]


class History:
    """Ring buffers of :class:`StepRecord`, :class:`MetricPoint` and :class:`Snapshot`.

    Args:
        max_records: step records kept (one per training step).
        max_metrics: metric evaluations kept.
        max_snapshots: snapshots kept (for replay; each is a few arrays of [n, 2]).
        snapshot_every: keep a snapshot offered by :meth:`add_snapshot` only if its step is at least
            this many steps after the last kept one.
    """

    def __init__(
        self, max_records: int = 20_000, max_metrics: int = 2_000, max_snapshots: int = 200, snapshot_every: int = 10
    ):
        if min(max_records, max_metrics, max_snapshots) < 1 or snapshot_every < 1:
            raise ValueError("history sizes and snapshot_every must be positive")
        self.records: deque[StepRecord] = deque(maxlen=max_records)
        self.metrics: deque[MetricPoint] = deque(maxlen=max_metrics)
        self.snapshots: deque[Snapshot] = deque(maxlen=max_snapshots)
        self.snapshot_every = snapshot_every

    def __len__(self) -> int:
        return len(self.records)

    def truncate(self, step: int) -> None:
        """Drop every record, metric and snapshot after ``step`` (the ring buffers keep their sizes)."""
        self.records = deque((r for r in self.records if r.step <= step), maxlen=self.records.maxlen)
        self.metrics = deque((m for m in self.metrics if m.step <= step), maxlen=self.metrics.maxlen)
        self.snapshots = deque((s for s in self.snapshots if s.step <= step), maxlen=self.snapshots.maxlen)

    def until(self, step: int) -> History:
        """A new history with this one's records, metrics and snapshots up to ``step`` (a fork's past)."""
        out = History(self.records.maxlen, self.metrics.maxlen, self.snapshots.maxlen, self.snapshot_every)
        out.records.extend(r for r in self.records if r.step <= step)
        out.metrics.extend(m for m in self.metrics if m.step <= step)
        out.snapshots.extend(s for s in self.snapshots if s.step <= step)
        return out

    def add_records(self, records: Iterable[StepRecord]) -> None:
        """Append step records (diverged ones included: they carry the message and no update)."""
        self.records.extend(records)

    def add_metrics(self, step: int, wall_s: float, values: dict[str, float]) -> None:
        self.metrics.append(MetricPoint(int(step), float(wall_s), {k: float(v) for k, v in values.items()}))

    def add_snapshot(self, snapshot: Snapshot, *, force: bool = False) -> bool:
        """Keep ``snapshot`` if ``force`` or it is ``snapshot_every`` steps past the last kept one.
        Returns whether it was kept."""
        if not force and self.snapshots and snapshot.step - self.snapshots[-1].step < self.snapshot_every:
            return False
        self.snapshots.append(snapshot)
        return True

    def record_rows(self, max_rows: int | None = None) -> list[dict[str, Any]]:
        """Step records as flat rows (``StepRecord.as_row``), evenly thinned to at most ``max_rows``
        (the newest row is always kept)."""
        return [r.as_row() for r in _thin(list(self.records), max_rows)]

    def metric_rows(self, max_rows: int | None = None) -> list[dict[str, Any]]:
        """Metric points as flat rows {step, wall_s, name: value...}, thinned like :meth:`record_rows`."""
        return [{"step": m.step, "wall_s": m.wall_s, **m.values} for m in _thin(list(self.metrics), max_rows)]

    def snapshot_at(self, step: int) -> Snapshot | None:
        """The newest kept snapshot at or before ``step`` (None if none is that old)."""
        return next((s for s in reversed(self.snapshots) if s.step <= step), None)

    def record_at(self, step: int) -> StepRecord | None:
        """The newest step record at or before ``step``."""
        return next((r for r in reversed(self.records) if r.step <= step), None)

    def metrics_at(self, step: int) -> dict[str, float]:
        """The newest evaluation's values at or before ``step`` ({} if none)."""
        return next((m.values for m in reversed(self.metrics) if m.step <= step), {})

    def clear(self) -> None:
        self.records.clear()
        self.metrics.clear()
        self.snapshots.clear()


def _thin(items: list, max_rows: int | None) -> list:
    """At most ``max_rows`` items, evenly spaced, always including the last one."""
    if max_rows is None or len(items) <= max_rows:
        return items
    if max_rows < 1:
        return []
    stride = len(items) / max_rows
    picked = [items[int(i * stride)] for i in range(max_rows - 1)]
    return picked + [items[-1]]
