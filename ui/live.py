"""The live frame loop shared by the Playground and Compare pages.

``live_frame(body, playing)`` runs ``body`` as an ``st.fragment`` that Streamlit re-runs every
``FRAME_S`` seconds while playing (and not at all while paused: the page's full run draws it once).
Each tick trains a bounded chunk of steps, then redraws; training never runs in an open loop.
"""
from __future__ import annotations

import time
from typing import Callable

import streamlit as st

FRAME_S = 0.2
"""Target frame interval of the particle view (5 redraws per second)."""
CURVES_S = 1.0
"""Refresh interval of the metric curves (Altair charts cost ~40 ms each to build: not every frame)."""


def live_frame(body: Callable[[], None], playing: bool, interval: float = FRAME_S) -> None:
    from .safety import guard_session

    def tick() -> None:
        guard_session()  # a session that animates is in use: keep it live (DRIFT_MAX_SESSIONS)
        body()

    st.fragment(run_every=interval if playing else None)(tick)()


class FrameClock:
    """Measures one frame (training + drawing) for the slow-frame warning."""

    def __init__(self):
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def slow_frame_warning(train_s: float, steps: int, interval: float = FRAME_S) -> None:
    """A plain warning when one frame's training alone takes longer than the frame interval."""
    if steps and train_s > interval:
        st.warning(
            f"Training {steps} step(s) took {train_s * 1000:.0f} ms, longer than the {interval * 1000:.0f} ms "
            "frame interval: the animation will stutter. Lower 'Steps per frame', the batch size or K.",
            icon=":material/slow_motion_video:",
        )
