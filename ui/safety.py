"""Reliability in the app: a bound on live sessions and checkpoint save/load. The logic lives in
:mod:`drift_views.registry` (the registry) and :mod:`drift_core.checkpoint`; divergence and out-of-memory
handling are the run's (:class:`drift_core.run.Run`), shown by :mod:`ui.run_view`.

Nothing a user uploads is executed: checkpoints are read with ``torch.load(weights_only=True)``
(:func:`drift_core.checkpoint.load_checkpoint`), and every refusal leaves the current run untouched.
"""

from __future__ import annotations

import gc
import threading
import weakref
from functools import partial

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from drift_core.checkpoint import checkpoint_bytes
from drift_core.limits import Limits
from drift_core.process import release_memory
from drift_core.train import Trainer
from drift_views.registry import SessionLimitError, shared_registry, start_janitor

from .session import LabSession, lab, outcome, uploaded

registry = shared_registry
"""The process-wide registry of live sessions (:func:`drift_views.registry.shared_registry`)."""


def guard_session() -> bool:
    """Register this browser session as live (call on every script run and every animation frame).

    A session evicted while idle finds its runs released and a notice saying why; a new session on a
    server whose live sessions are all active is refused with the reason (``st.stop``). Returns
    whether it was admitted."""
    if get_script_run_ctx() is None:
        return True
    session = lab()
    # a weak reference: when Streamlit drops a closed tab's session, its runs must be freed with it, not
    # kept alive by the registry's callback until the entry is evicted
    alive = weakref.ref(session)
    try:
        registry().touch(
            session.token,
            lambda: (found := alive()) is not None and found.release(),
            connection=get_script_run_ctx().session_id,
        )
    except SessionLimitError as err:
        st.error(f"Drift Lab is busy: {err}.", icon=":material/group:")
        st.stop()
        return False
    return True


def show_session_notice() -> None:
    notice = lab().take_notice("session")
    if notice:
        st.warning(notice, icon=":material/hourglass_empty:")


# ---- checkpoints ---------------------------------------------------------------------------------------
def trainer_checkpoint(trainer: Trainer) -> bytes:
    return checkpoint_bytes(trainer.state_dict(), kind="toy2d")


def _take_checkpoint(page: str, data: bytes, name: str) -> None:
    lab().take_checkpoint(page, data, name, Limits.from_env())


def checkpoint_controls(session: LabSession, page: str) -> None:
    """Save the page's run as a checkpoint (download), or load one (upload) in its place."""
    with st.sidebar.expander("Checkpoint: save or load a run", icon=":material/save:"):
        run = session.runs.get(page)
        if run is not None:
            trainer = run.trainer
            st.download_button(
                "Save checkpoint",
                data=lambda: trainer_checkpoint(trainer),
                file_name=f"drift-lab-{trainer.config.data.dataset}.pt",
                mime="application/octet-stream",
                on_click="ignore",
                icon=":material/download:",
                help="the weights, optimizer state, data stream and settings: load it here or with "
                "`python -m drift_core train --resume FILE`",
            )
        st.file_uploader(
            "Load a checkpoint (.pt)",
            type=["pt"],
            **uploaded("checkpoint_upload", partial(_take_checkpoint, page)),
            help="only plain weights are read (torch.load with weights_only=True): a file that "
            "would run code is refused",
        )
        outcome(st, session.notices.get("checkpoint", ""))


# ---- the server's memory ----------------------------------------------------------------------------------
TRIM_EVERY_S = 10.0
"""How often the memory janitor tidies (:func:`tidy_memory`)."""


def _server_runtime():
    """The running Streamlit server's runtime, or None where there is none: bare mode, or AppTest (whose
    runtime is a stand-in without a session manager)."""
    if not runtime.exists():
        return None
    instance = runtime.get_instance()
    return instance if getattr(instance, "_session_mgr", None) is not None else None


def _tab_connected(session_id: str) -> bool:
    """Whether the browser connection of Streamlit session ``session_id`` is open now (True without a
    server: nothing is released there)."""
    server = _server_runtime()
    return server is None or server.is_active_session(session_id)


def forget_expired_streamlit_sessions() -> bool:
    """Make Streamlit forget the closed tabs it no longer keeps for reconnection. Returns whether it could.

    Streamlit keeps a disconnected session (its session state, its fragments and whatever they hold) in
    a TTL cache for ``server.disconnectedSessionTTL`` seconds, but prunes expired entries only when
    another session disconnects (a known upstream limitation): after the last tabs close, their
    sessions stay in memory indefinitely. This prunes them, under the session manager's own lock. It
    reaches into Streamlit's internals, so it checks each one and does nothing where they differ."""
    server = _server_runtime()
    if server is None:
        return False
    manager = server._session_mgr
    expire = getattr(getattr(getattr(manager, "_session_storage", None), "_cache", None), "expire", None)
    lock = getattr(manager, "_storage_lock", None)
    if not callable(expire) or lock is None:
        return False
    with lock:
        expire()
    return True


def tidy_memory() -> list[str]:
    """One round of the memory janitor: release the runs of tabs closed for longer than Streamlit's
    ``server.disconnectedSessionTTL`` (the time it keeps a session for a reconnecting tab) and let
    Streamlit forget those sessions, collect reference cycles, and hand freed memory back
    (:func:`drift_core.process.release_memory`). Returns the released sessions' registry keys."""
    released = registry().release_closed(_tab_connected, float(st.get_option("server.disconnectedSessionTTL")))
    forget_expired_streamlit_sessions()
    gc.collect()
    release_memory()
    return released


def start_memory_janitor(every_s: float = TRIM_EVERY_S) -> threading.Thread | None:
    """Start (once per process) the thread that runs :func:`tidy_memory` every ``every_s`` seconds
    (:func:`drift_views.registry.start_janitor`).

    It must not wait for a script run: after the last tab closes no script runs any more, and
    Streamlit forgets a disconnected session only when another one disconnects, so neither a trim
    called from a rerun nor Python's cycle collector (driven by allocations) would ever free the closed
    tabs' runs. Returns the thread, or None without a Streamlit server (AppTest, bare mode): no tabs to
    close there, and a collector running beside the caller's own ``gc.collect()`` would make that call
    return without collecting."""
    return None if _server_runtime() is None else start_janitor(tidy_memory, every_s)
