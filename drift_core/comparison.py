"""Which arm of a lock-step comparison is ahead, at equal steps and at equal training time, and by how
much compared with the noise of the measurement itself.

The noise scale is the spread of each arm's last few evaluations: the metric of one run wobbles from
evaluation to evaluation (a finite evaluation sample, a noisy training trajectory), and a gap smaller
than that wobble is not a difference a class should be told about. A gap counts as clear when it is
at least :data:`CLEAR` times the larger spread of the two arms compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .history import History

__all__ = ["Standing", "Comparison", "compare_arms_now", "CLEAR", "WINDOW"]

WINDOW = 5
"""Evaluations per arm that make its recent level (their mean) and its spread (their standard deviation)."""
CLEAR = 2.0
"""A gap of at least this many spreads is called a clear difference."""


@dataclass(frozen=True)
class Standing:
    """Arms ranked by a metric at one point (lower is better: a distance), each with its recent level
    and spread."""

    at: float  # the step, or the training seconds
    levels: dict[str, float]  # arm -> mean of its last evaluations up to ``at``
    spreads: dict[str, float]  # arm -> their standard deviation

    @property
    def ranking(self) -> list[str]:
        return sorted(self.levels, key=self.levels.get)

    @property
    def gap(self) -> float:
        """How far the second arm is behind the first."""
        first, second = self.ranking[:2]
        return self.levels[second] - self.levels[first]

    @property
    def noise(self) -> float:
        first, second = self.ranking[:2]
        return max(self.spreads[first], self.spreads[second])

    @property
    def clear(self) -> bool:
        return self.gap > CLEAR * self.noise


@dataclass(frozen=True)
class Comparison:
    metric: str
    at_step: Standing
    at_time: Standing | None  # None until every arm has been evaluated after some training time


def _standing(points: Mapping[str, list[tuple[float, float]]], at: float) -> Standing | None:
    """Each arm's last ``WINDOW`` (x, value) points with x <= at."""
    levels, spreads = {}, {}
    for name, series in points.items():
        values = [v for x, v in series if x <= at][-WINDOW:]
        if not values:
            return None
        levels[name] = float(np.mean(values))
        spreads[name] = float(np.std(values)) if len(values) > 1 else 0.0
    return Standing(at, levels, spreads)


def compare_arms_now(histories: Mapping[str, History], metric: str = "energy") -> Comparison | None:
    """The standing of the arms at the latest step all have evaluated, and at the latest training time
    all have reached (an arm that costs more per step has trained fewer steps by then). None with
    fewer than two arms or before every arm has an evaluation."""
    if len(histories) < 2:
        return None
    by_step = {
        name: [(m.step, m.values[metric]) for m in h.metrics if metric in m.values] for name, h in histories.items()
    }
    if not all(by_step.values()):
        return None
    step = min(series[-1][0] for series in by_step.values())
    at_step = _standing(by_step, step)
    if at_step is None:
        return None
    by_time = {
        name: [(m.wall_s, m.values[metric]) for m in h.metrics if metric in m.values and m.wall_s > 0]
        for name, h in histories.items()
    }
    at_time = None
    if all(by_time.values()):
        seconds = min(series[-1][0] for series in by_time.values())
        at_time = _standing(by_time, seconds)
    return Comparison(metric, at_step, at_time)
