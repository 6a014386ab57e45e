"""The live frame loop shared by the Playground and Compare pages (its pacing, without Streamlit, is
:mod:`drift_views.pacing`).

``live_fragment(body, playing)`` runs ``body`` as an ``st.fragment`` that Streamlit re-runs every
``FRAME_S`` seconds while playing (and not at all while paused: the page's full run draws it once).
Each tick trains a bounded chunk of steps, then redraws; training never runs in an open loop.

One timer-driven fragment run costs a browser-server round trip (~300 ms measured on 2 cores), so one
frame per run could not reach 5 redraws a second. ``frame_ticks`` lets a body draw several frames per
timer run: it paces up to ``FRAMES_PER_RUN`` frames ``FRAME_S`` apart. The body lays its page out on
the first frame and then updates the same elements in place (:class:`MetricCards`, :class:`StatusLine`,
:class:`ui.live_plot.LiveView`); Streamlit sends each update to the browser as it happens. Timer
requests that arrive meanwhile queue behind the run and never preempt it, while a user's click does
preempt it at the next element, so controls answer within a frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from drift_views import pacing
from drift_views.pacing import FRAME_S, FRAMES_PER_RUN, slow_frame

from .safety import guard_session


def timer_run() -> bool:
    """True when the current script run re-runs fragments only (the run_every timer or a widget
    inside a fragment), False in a full page run (page load, a sidebar change, AppTest's run())."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def frame_ticks(keep_going: Callable[[], bool]) -> Iterator[int]:
    """The frames of this script run (:func:`drift_views.pacing.frame_ticks`): up to
    ``FRAMES_PER_RUN`` in a timer run, one in a full run."""
    return pacing.frame_ticks(keep_going, FRAMES_PER_RUN if timer_run() else 1)


def live_fragment(body: Callable[[], None], playing: bool, interval: float = FRAME_S) -> None:
    """Run ``body`` as a fragment that Streamlit re-runs every ``interval`` seconds while ``playing``
    (and once per full page run otherwise); every tick also keeps the session live in the server's
    registry (``DRIFT_MAX_SESSIONS``: a session that animates is in use)."""

    def tick() -> None:
        guard_session()
        body()

    st.fragment(run_every=interval if playing else None)(tick)()


class MetricCards:
    """A grid of ``st.metric`` cards laid out once per run and updated in place on later frames.

    Not an ``st.empty`` placeholder: that is sent as an empty element at the start of every run, and
    the cards were seen missing from the page right after a click (a full rerun) until the frame was
    drawn. Columns re-sent at the same place keep their contents, and the handle ``st.metric`` returns
    replaces its own card."""

    def __init__(self, columns_per_row: Sequence[int]):
        self._cells = [cell for count in columns_per_row for cell in st.columns(count)]
        self._cards: list = [None] * len(self._cells)

    def show(self, index: int, label: str, value: str, **kwargs) -> None:
        target = self._cards[index] if self._cards[index] is not None else self._cells[index]
        self._cards[index] = target.metric(label, value, **kwargs)


class StatusLine:
    """The slow-frame warning (usually absent) and a caption, updated in place from frame to frame."""

    def __init__(self):
        self._warning = st.empty()
        self._caption = st.empty()  # placed now: the caption stays under the picture, whatever comes after

    def show(self, text: str, train_s: float = 0.0, steps: int = 0) -> None:
        why = slow_frame(train_s, steps)
        if why:
            self._warning.warning(why, icon=":material/slow_motion_video:")
        else:
            self._warning.empty()
        self._caption.caption(text)
