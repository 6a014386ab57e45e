"""How a live view paces training and drawing, without Streamlit: the frame interval and the frames of
one timer run (:func:`frame_ticks`), where one frame's time went (:class:`FrameBudget`), how long the
next frame may train on "auto" (:func:`training_budget`, :func:`advance_within`) and how fast the step
counter moves (:class:`StepRate`). :mod:`ui.live` runs the frames in a Streamlit fragment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from drift_core.run import Run

FRAME_S = 0.15
"""Target frame interval of the particle view: up to ~6.7 frames a second, so that the round trips
between runs still leave at least 5 (5.5-6 measured in Chromium, benchmarks/RESULTS.md)."""
CURVES_S = 1.0
"""Refresh interval of the metric curves (Altair charts cost ~40 ms each to build: not every frame)."""
FRAMES_PER_RUN = 25
"""Frames one timer-driven fragment run draws while playing (a full page run draws one). Between two
runs lies a browser-server round trip and a fresh layout of the fragment, time nobody trains in; a
click still interrupts a run at its next element, so a long run costs no responsiveness."""


def frame_ticks(
    keep_going: Callable[[], bool],
    frames: int,
    interval: float = FRAME_S,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[int]:
    """Frame indices 0, 1, ... for one run of a live body.

    Frame 0 always; then, while ``keep_going()`` is true, up to ``frames`` - 1 more, each started
    ``interval`` seconds after the previous one started, or at once when that frame overran (no
    catch-up bursts)."""
    started = clock()
    for index in range(frames):
        if index:
            if not keep_going():
                return
            wait = started + interval - clock()
            if wait > 0:
                sleep(wait)
            started = max(clock(), started + interval)
        yield index


@dataclass
class FrameBudget:
    """Where one frame's time went, phase by phase (seconds): training, the run's snapshots (and the
    evaluation, when one was due), building the figures, and handing them to Streamlit. Shown in the
    status line and read by ``benchmarks/app_redraw.py``."""

    train: float = 0.0
    steps: int = 0
    snapshot: float = 0.0
    figures: float = 0.0
    send: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, name, getattr(self, name) + time.perf_counter() - start)

    @property
    def drawing(self) -> float:
        return self.snapshot + self.figures + self.send

    def describe(self) -> str:
        ms = lambda s: f"{s * 1000:.0f}"  # noqa: E731
        return (
            f"frame: training {ms(self.train)} ms ({self.steps} steps) · snapshot {ms(self.snapshot)} · "
            f"figures {ms(self.figures)} · send {ms(self.send)} ms"
        )


def slow_frame(train_s: float, steps: int, interval: float = FRAME_S) -> str:
    """Why the animation stutters when one frame's ``steps`` fixed training steps alone took longer
    (``train_s``) than the frame interval, and what to change; "" otherwise."""
    if not steps or train_s <= interval:
        return ""
    return (
        f"Training {steps} step(s) took {train_s * 1000:.0f} ms, longer than the {interval * 1000:.0f} ms "
        "frame interval: the animation will stutter. Choose 'auto' or fewer steps per frame, a smaller "
        "batch size or K."
    )


def training_budget(drawing_s: float, interval: float = FRAME_S) -> float:
    """Seconds of training for the next frame when steps per frame is "auto": what the frame interval
    leaves after drawing, and at least 1.5x the drawing time, so that training gets at least 60 % of
    the wall time however slow drawing is (the frame rate drops instead)."""
    return max(interval - drawing_s, 1.5 * drawing_s)


def advance_within(
    run: Run, seconds: float, max_steps: int, *, clock: Callable[[], float] = time.perf_counter
) -> tuple[int, str]:
    """Train ``run`` one step at a time for about ``seconds`` ("auto" steps per frame): a next step is
    taken while it is expected to end in time, judged by the last one; at least one step, at most
    ``max_steps``, never waiting for another caller's training. Returns the steps taken (all arms)
    and why the run paused ("" if it did not)."""
    start = clock()
    deadline, previous, steps, reason = start + seconds, start, 0, ""
    for _ in range(max_steps):
        advance = run.advance(1, wait=False)
        steps, reason = steps + len(advance.records), advance.paused_reason
        now = clock()
        if reason or advance.busy or now + (now - previous) > deadline:
            break
        previous = now
    return steps, reason


def train_chunk(run: Run, steps_per_frame: int, last_drawing_s: float, max_steps: int) -> tuple[int, str]:
    """One frame's training while playing: ``steps_per_frame`` steps, or for 0 ("auto") as many as fit
    the frame's training budget after drawing took ``last_drawing_s`` (:func:`advance_within`), never
    queueing behind another caller's training. Returns the steps each arm took and why the run paused
    ("" if it did not)."""
    if steps_per_frame:
        advance = run.advance(steps_per_frame, wait=False)
        steps, reason = len(advance.records), advance.paused_reason
    else:
        steps, reason = advance_within(run, training_budget(last_drawing_s), max_steps)
    return steps // max(1, len(run.trainers)), reason


@dataclass
class StepRate:
    """Steps per second of wall-clock time over the last ``window_s`` seconds of playing, from the
    step counter seen at each frame."""

    window_s: float = 3.0
    samples: list[tuple[float, int]] = field(default_factory=list)

    def add(self, step: int, playing: bool, now: float | None = None) -> str:
        """Record the step seen now; the rate as text ("–" while paused or before half a second)."""
        if not playing:
            self.samples.clear()
            return "–"
        now = time.monotonic() if now is None else now
        self.samples.append((now, step))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window_s:
            self.samples.pop(0)
        (t0, s0), (t1, s1) = self.samples[0], self.samples[-1]
        return f"{(s1 - s0) / (t1 - t0):.0f}" if t1 - t0 > 0.5 else "–"
