"""Frame pacing without Streamlit (drift_views.pacing, with a fake clock): frames one interval apart and
no catch-up bursts, the "auto" training chunk within its time, and the step rate."""

from __future__ import annotations

import pytest

from drift_core.config import ExperimentConfig
from drift_core.run import Run
from drift_views import pacing


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_frame_ticks_paces_frames_one_interval_apart():
    clock = FakeClock()
    starts = []
    for _ in pacing.frame_ticks(lambda: True, frames=4, interval=0.2, clock=clock, sleep=clock.sleep):
        starts.append(round(clock.now, 6))
        clock.now += 0.05  # the frame's own work
    assert starts == [100.0, 100.2, 100.4, 100.6]
    assert clock.sleeps == [0.15, 0.15, 0.15]


def test_frame_ticks_does_not_burst_after_a_slow_frame_and_stops_when_paused():
    clock = FakeClock()
    starts, playing = [], [True]
    for index in pacing.frame_ticks(lambda: playing[0], frames=5, interval=0.2, clock=clock, sleep=clock.sleep):
        starts.append(round(clock.now, 6))
        clock.now += 0.5 if index == 0 else 0.05  # frame 0 overruns the interval
        if index == 2:
            playing[0] = False  # e.g. the step budget was reached
    # frame 1 starts at once after the overrun; frame 2 one interval after frame 1, not "catching up"
    assert starts == [100.0, 100.5, 100.7]


def test_auto_steps_train_until_the_next_step_would_overrun_the_budget():
    """advance_within takes steps while the next one (judged by the last) ends within the budget: at
    least one, at most max_steps; a run paused by its budget stops the chunk with the reason."""
    config = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "batch_size": 16})
    run = Run.single(config)
    clock = FakeClock()
    real_advance = run.advance

    def advance(steps, wait=True):  # every step takes 10 ms of the fake clock
        clock.now += 0.010
        return real_advance(steps, wait=wait)

    run.advance = advance
    assert pacing.advance_within(run, 0.045, 100, clock=clock) == (4, "")  # the 5th would end at 50 ms
    assert pacing.advance_within(run, 0.0, 100, clock=clock) == (1, "")  # always one
    assert pacing.advance_within(run, 10.0, 7, clock=clock) == (7, "")
    short = Run.single(config.with_values({"steps": run.step + 3}))
    short.advance(run.step)
    steps, reason = pacing.advance_within(short, 10.0, 100)
    assert steps <= 3 and reason


def test_a_frames_chunk_takes_the_fixed_steps_of_every_arm_or_the_auto_chunk():
    config = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "batch_size": 16})
    pair = Run.compare(config.with_values({"K": 1}))
    assert pacing.train_chunk(pair, 3, 0.0, 50) == (3, "") and pair.step == 3  # steps per arm
    steps, reason = pacing.train_chunk(pair, 0, 0.0, 2)  # auto: within the frame's budget, at most max_steps
    assert 1 <= steps <= 2 and reason == "" and pair.step == 3 + steps
    short = Run.single(config.with_values({"steps": 2}))
    steps, reason = pacing.train_chunk(short, 5, 0.0, 50)
    assert steps == 2 and "budget" in reason and short.step == 2


def test_step_rate_is_steps_per_second_over_the_last_seconds_of_playing():
    rate = pacing.StepRate(window_s=3.0)
    assert rate.add(0, playing=True, now=10.0) == "–"  # one sample: no rate yet
    assert rate.add(20, playing=True, now=11.0) == "20"
    assert rate.add(50, playing=True, now=12.0) == "25"
    assert rate.add(200, playing=True, now=20.0) == "19"  # (200 - 50) / (20 - 12)
    assert len(rate.samples) == 2  # older samples left the 3 s window
    assert rate.add(210, playing=False, now=21.0) == "–" and rate.samples == []


def test_training_gets_at_least_sixty_percent_of_a_frame():
    assert pacing.training_budget(0.05, interval=0.15) == pytest.approx(0.10)
    slow = pacing.training_budget(1.0, interval=0.15)
    assert slow / (slow + 1.0) == pytest.approx(0.6)


def test_a_slow_frame_is_explained_only_when_fixed_steps_overrun_the_frame():
    assert pacing.slow_frame(0.5, 0, interval=0.2) == ""  # "auto": the budget already bounds training
    assert pacing.slow_frame(0.1, 10, interval=0.2) == ""
    why = pacing.slow_frame(0.5, 10, interval=0.2)
    assert why.startswith("Training 10 step(s) took 500 ms, longer than the 200 ms frame interval")
