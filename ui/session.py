"""Everything one browser session keeps between script runs, in one object.

Streamlit runs a page's script again on every interaction, so what must survive a run lives in one
:class:`LabSession`, kept under the single session-state key :data:`KEY`: the experiment
configuration (the only copy of the settings), the display settings, the uploaded points, each page's
:class:`~drift_core.run.Run`, the notices waiting to be shown and any page's own state. Pages and
``ui`` helpers reach it through :func:`lab`; nothing else in the app stores state under a name of
its own.

Widget keys are not state. Streamlit drops the state of a widget that a page does not draw (a sidebar
page switch, a run cut short by a click), so each widget's key is seeded from the session on every run
and its ``on_change`` writes the new value back here (:mod:`ui.controls`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import streamlit as st
from torch import Tensor

from drift_core.config import ExperimentConfig
from drift_views.display import ViewSettings

__all__ = ["KEY", "LabSession", "UserPoints", "bound", "lab"]

KEY = "lab"
"""The one session-state key the app stores its state under."""

T = TypeVar("T")


@dataclass(frozen=True)
class UserPoints:
    """An uploaded (or checkpointed) point set [M, 2], its description, and a version that grows
    with every new upload, so a run knows when its data changed."""

    points: Tensor
    description: str
    version: int


@dataclass
class LabSession:
    """One browser session's state. ``runs`` and ``replay`` are keyed by page name
    ("playground", "compare", "inspector", "images"); ``notices`` by topic ("link", "setting",
    "upload", "checkpoint", or a page name for what happened to its run); ``pages`` holds any
    page's own state object (see :meth:`page`)."""

    config: ExperimentConfig = field(default_factory=ExperimentConfig)
    view: ViewSettings = field(default_factory=ViewSettings)
    points: UserPoints | None = None
    runs: dict[str, Any] = field(default_factory=dict)
    run_points: dict[str, int] = field(default_factory=dict)  # the points version each page's run trains on
    fallbacks_seen: dict[str, int] = field(default_factory=dict)  # out-of-memory fallbacks taken into the config
    replay: dict[str, int | None] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)
    scenario: str | None = None  # the guided scenario whose "what to watch" is shown
    pages: dict[str, Any] = field(default_factory=dict)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # this session in the server's registry
    from_link: bool = False  # the settings were read from the URL (first run of the session)

    def set_view(self, **changes) -> None:
        self.view = replace(self.view, **changes)

    def page(self, name: str, factory: Callable[[], T]) -> T:
        """Page ``name``'s own state object, created by ``factory`` on first use."""
        if name not in self.pages:
            self.pages[name] = factory()
        return self.pages[name]

    def take_notice(self, topic: str) -> str:
        """The notice waiting under ``topic`` ("" if none), removed."""
        return self.notices.pop(topic, "")

    def adopt_fallbacks(self) -> None:
        """After a run fell back to a smaller batch (out of memory), make that batch the session's, so
        the next script run does not ask for the batch that did not fit."""
        for page, run in self.runs.items():
            trainers = list(getattr(run, "trainers", {}).values())
            taken = sum(len(getattr(t, "fallback_notices", ())) for t in trainers)
            if taken > self.fallbacks_seen.get(page, 0):
                self.fallbacks_seen[page] = taken
                smallest = min(t.config.train.batch_size for t in trainers)
                if page != "inspector" and smallest < self.config.train.batch_size:
                    self.config = self.config.with_values({"batch_size": smallest})

    def add_points(self, points: Tensor, description: str) -> None:
        version = self.points.version + 1 if self.points is not None else 1
        self.points = UserPoints(points, description, version)


def lab() -> LabSession:
    """This browser session's :class:`LabSession` (created on its first script run)."""
    session = st.session_state.get(KEY)
    if not isinstance(session, LabSession):
        session = st.session_state[KEY] = LabSession()
    return session


def bound(key: str, value: Any, write: Callable[[Any], None]) -> dict[str, Any]:
    """Widget kwargs that bind widget ``key`` to a value kept in the session: the key is given ``value``
    on this run (Streamlit drops the state of a widget a page does not draw), and its ``on_change``
    hands the widget's new value to ``write``, which stores it in the session. The one way every
    page's widgets keep their settings."""
    st.session_state[key] = value
    return {"key": key, "on_change": _write_back, "args": (key, write)}


def _write_back(key: str, write: Callable[[Any], None]) -> None:
    write(st.session_state[key])
