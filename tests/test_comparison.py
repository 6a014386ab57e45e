"""drift_core.comparison: which arm is ahead at equal steps and at equal training time, against the
spread of each arm's recent evaluations (checked against a direct computation)."""

from __future__ import annotations

import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from drift_core.comparison import CLEAR, WINDOW, compare_arms_now
from drift_core.history import History


def history(values, seconds_per_step=0.01, every=10):
    h = History()
    for i, v in enumerate(values):
        step = (i + 1) * every
        h.add_metrics(step, step * seconds_per_step, {"energy": v})
    return h


def test_a_clear_lead_at_equal_steps_and_a_reversal_at_equal_time():
    fast = history([0.5, 0.4, 0.30, 0.31, 0.29, 0.30, 0.30], seconds_per_step=0.01)  # cheap steps
    slow = history([0.4, 0.2, 0.10, 0.11, 0.09, 0.10, 0.10], seconds_per_step=0.05)  # 5x the cost per step
    result = compare_arms_now({"baseline": fast, "lookahead": slow})
    assert result.at_step.at == 70 and result.at_step.ranking == ["lookahead", "baseline"]
    assert result.at_step.clear and abs(result.at_step.gap - (sum([0.3, 0.31, 0.29, 0.3, 0.3]) / 5 - 0.1)) < 1e-12
    # by 0.7 s of training (the baseline's last), the lookahead arm has had 14 steps: only its first point
    assert abs(result.at_time.at - 0.7) < 1e-12 and result.at_time.ranking == ["baseline", "lookahead"]
    assert result.at_time.levels["lookahead"] == 0.4 and result.at_time.spreads["lookahead"] == 0.0


def test_a_gap_within_the_spread_is_not_clear():
    a = history([0.30, 0.20, 0.35, 0.25, 0.30])
    b = history([0.28, 0.33, 0.22, 0.31, 0.26])
    standing = compare_arms_now({"a": a, "b": b}).at_step
    assert not standing.clear and standing.gap < CLEAR * standing.noise


def test_nothing_to_compare_before_every_arm_is_evaluated():
    assert compare_arms_now({"a": history([0.1]), "b": History()}) is None
    assert compare_arms_now({"a": history([0.1])}) is None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.floats(0.001, 10), min_size=1, max_size=12), st.lists(st.floats(0.001, 10), min_size=1, max_size=12))
def test_levels_and_spreads_are_the_last_window_mean_and_deviation(xs, ys):
    result = compare_arms_now({"x": history(xs), "y": history(ys)})
    common = min(len(xs), len(ys))
    for name, values in (("x", xs), ("y", ys)):
        recent = values[:common][-WINDOW:]
        assert abs(result.at_step.levels[name] - statistics.fmean(recent)) < 1e-9
        expected = statistics.pstdev(recent) if len(recent) > 1 else 0.0
        assert abs(result.at_step.spreads[name] - expected) < 1e-9
    assert result.at_step.ranking[0] == min(result.at_step.levels, key=result.at_step.levels.get)
