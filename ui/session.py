"""Everything one browser session keeps between script runs, in one object.

Streamlit runs a page's script again on every interaction, so what must survive a run lives in one
:class:`~drift_views.session.LabSession`, kept under the single session-state key :data:`KEY`: the experiment
configuration (the only copy of the settings), the display settings, the uploaded points, each page's
:class:`~drift_core.run.Run`, the notices waiting to be shown and any page's own state. Pages and
``ui`` helpers reach it through :func:`lab`; nothing else in the app stores state under a name of
its own.

Widget keys are not state. Streamlit drops the state of a widget that a page does not draw (a sidebar
page switch, a run cut short by a click), so each widget's key is seeded from the session on every run
and its ``on_change`` writes the new value back here (:func:`bound`); a file uploader hands its file
over (:func:`uploaded`) and a chart its selection (:func:`chart_selection`) the same way. This is the
only module that touches ``st.session_state`` (``tests/test_api.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from drift_views.session import LabSession

__all__ = ["KEY", "LabSession", "bound", "chart_selection", "lab", "on_session", "outcome", "uploaded"]

KEY = "lab"
"""The one session-state key the app stores its state under."""


def lab() -> LabSession:
    """This browser session's :class:`LabSession` (created on its first script run)."""
    session = st.session_state.get(KEY)
    if not isinstance(session, LabSession):
        session = st.session_state[KEY] = LabSession()
    return session


def on_session(method: str, *args) -> None:
    """A control's callback: the :class:`LabSession` method ``method`` with ``args``, on the session of
    the click (looked up when the callback runs)."""
    getattr(lab(), method)(*args)


def bound(key: str, value: Any, write: Callable[[Any], None]) -> dict[str, Any]:
    """Widget kwargs that bind widget ``key`` to a value kept in the session: the key is given ``value``
    on this run (Streamlit drops the state of a widget a page does not draw), and its ``on_change``
    hands the widget's new value to ``write``, which stores it in the session. The one way every
    page's widgets keep their settings."""
    st.session_state[key] = value
    return {"key": key, "on_change": _write_back, "args": (key, write)}


def _write_back(key: str, write: Callable[[Any], None]) -> None:
    write(st.session_state[key])


def uploaded(key: str, take: Callable[[bytes, str], None]) -> dict[str, Any]:
    """File-uploader kwargs: key ``key``, and an ``on_change`` that hands a new file's bytes and name to
    ``take`` (a session method that reads it and keeps what it says), once per upload."""
    return {"key": key, "on_change": _hand_over, "args": (key, take)}


def _hand_over(key: str, take: Callable[[bytes, str], None]) -> None:
    file = st.session_state.get(key)
    if file is not None:
        take(file.getvalue(), file.name)


def chart_selection(key: str, take: Callable[[Any], None]) -> dict[str, Any]:
    """Chart kwargs: key ``key``, and an ``on_select`` that hands the chart's selection event to
    ``take``."""
    return {"key": key, "on_select": lambda: take(st.session_state.get(key))}


def outcome(container, note: str) -> None:
    """What the last upload did: an error for a note that starts with "error:", a success otherwise
    (nothing for "")."""
    if note.startswith("error:"):
        container.error(note.removeprefix("error:"), icon=":material/block:")
    elif note:
        container.success(note, icon=":material/check_circle:")
