"""Reliability in the app: a bound on live sessions, checkpoint save/load, divergence recovery and
out-of-memory notices. Pages call these with a line each; the logic lives in ``drift_core``
(:mod:`ui.sessions`, :mod:`~drift_core.checkpoint`, ``Run.step_back``, the trainer's
out-of-memory fallback).

Nothing a user uploads is executed: checkpoints are read with ``torch.load(weights_only=True)``
(:func:`drift_core.checkpoint.load_checkpoint`), and every refusal leaves the current run untouched.
"""
from __future__ import annotations

import threading
import uuid

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from drift_core.checkpoint import CheckpointError, checkpoint_bytes
from drift_core.config import ConfigError, ExperimentConfig
from drift_core.limits import Limits
from drift_core.run import TAPE_EVERY, Run
from .sessions import SessionLimitError, SessionRegistry
from drift_core.train import Trainer

EVICTED_NOTICE = ("This session was idle while the server was full, so its run was released to make room for "
                  "another user (DRIFT_MAX_SESSIONS). Your settings are kept; a fresh run has started.")
HEAVY_PREFIXES = ("ui.", "drift_core.")
"""Session-state values of these modules' classes (runs, trainers, histories, tapes) are released on eviction."""
WIDGET_BOUNDS = {"steps": (0, 1_000_000), "alpha": (0.0, 3.0)}
"""Ranges of the sidebar widgets whose config field allows more (a loaded checkpoint is clamped to them)."""

SESSION_TOKEN = "_drift_session_token"
_registry: SessionRegistry | None = None
_registry_lock = threading.Lock()


# ---- a bound on live sessions -------------------------------------------------------------------------
def registry() -> SessionRegistry:
    """The process-wide registry of live sessions (sized by DRIFT_MAX_SESSIONS / DRIFT_SESSION_IDLE_S)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            limits = Limits.from_env()
            _registry = SessionRegistry(limits.max_sessions, min_idle_s=limits.session_idle_s)
        return _registry


def set_registry(new: SessionRegistry | None) -> None:
    """Replace the registry (tests; an operator changing limits needs a server restart otherwise)."""
    global _registry
    with _registry_lock:
        _registry = new


def _release(safe_state) -> None:
    """Free an evicted session's runs: delete its session-state values that are Drift Lab objects
    (the session is idle: nothing of it is running). Its configuration and uploaded points stay."""
    for key, value in list(safe_state.filtered_state.items()):
        module = type(value).__module__ or ""
        if module.startswith(HEAVY_PREFIXES) and not isinstance(value, ExperimentConfig):
            try:
                del safe_state[key]
            except KeyError:
                pass


def guard_session() -> bool:
    """Register this browser session as live (call on every script run and every animation frame).

    A session evicted while idle gets :data:`EVICTED_NOTICE`; a new session on a server whose live
    sessions are all active is refused with the reason (``st.stop``). Returns whether it was admitted."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return True
    ss = st.session_state
    if SESSION_TOKEN not in ss:  # one random token per browser session (Streamlit's ids are not unique in tests)
        ss[SESSION_TOKEN] = uuid.uuid4().hex
    key = ss[SESSION_TOKEN]
    reg = registry()
    if reg.was_evicted(key):
        ss["session_evicted_notice"] = EVICTED_NOTICE
    safe_state = ctx.session_state
    try:
        reg.touch(key, lambda: _release(safe_state))
    except SessionLimitError as err:
        st.error(f"Drift Lab is busy: {err}.", icon=":material/group:")
        st.stop()
        return False
    return True


def show_session_notice() -> None:
    notice = st.session_state.pop("session_evicted_notice", "")
    if notice:
        st.warning(notice, icon=":material/hourglass_empty:")


# ---- checkpoints ---------------------------------------------------------------------------------------
def trainer_checkpoint(trainer: Trainer) -> bytes:
    return checkpoint_bytes(trainer.state_dict(), kind="toy2d")


def run_from_trainer(trainer: Trainer):
    """A Playground run around an existing (e.g. loaded) trainer, as ``Run.single`` builds one."""
    return Run.around(trainer)


def _set_widgets(config: ExperimentConfig) -> None:
    """Make ``config`` the session's, widget keys included (call from a callback, before widgets exist)."""
    ss = st.session_state
    ss["config"] = config
    for name, value in config.to_flat().items():
        if name in WIDGET_BOUNDS:
            lo, hi = WIDGET_BOUNDS[name]
            value = type(value)(min(max(value, lo), hi))
        ss[name] = value


def _take_checkpoint(run_key: str, uploader_key: str) -> None:
    """on_change of the checkpoint uploader: load safely; on success the loaded run replaces the current
    one (its settings become the session's), on failure nothing changes and the reason is shown."""
    ss = st.session_state
    file = ss.get(uploader_key)
    if file is None:
        return
    try:
        trainer = Trainer.load(file.getvalue(), limits=Limits.from_env())
    except CheckpointError as err:
        ss["checkpoint_error"] = f"Could not load {file.name}: {err}. Your current run is unchanged."
        ss["checkpoint_note"] = ""
        return
    except (ConfigError, ValueError) as err:  # e.g. the checkpoint asks for a device this server lacks
        ss["checkpoint_error"] = f"Could not load {file.name}: {err}. Your current run is unchanged."
        ss["checkpoint_note"] = ""
        return
    run = run_from_trainer(trainer)
    if trainer.points is not None:
        ss["custom_points"] = trainer.points
        ss["custom_points_name"] = file.name
        ss["custom_points_version"] = ss.get("custom_points_version", 0) + 1
        ss[run_key + ":points"] = ss["custom_points_version"]
    _set_widgets(trainer.config)
    ss[run_key] = run
    ss["checkpoint_error"] = ""
    ss["checkpoint_note"] = (f"Loaded {file.name}: {trainer.config.data.dataset}, {trainer.config.drift.label()}, "
                             f"step {trainer.step_count}. Press Play to continue it.")


def checkpoint_controls(run_key: str, container=None) -> None:
    """Save (download) the run as a checkpoint, or load one (upload) in its place."""
    ss = st.session_state
    container = container or st.sidebar
    with container.expander("Checkpoint: save or load a run", icon=":material/save:"):
        run = ss.get(run_key)
        if run is not None:
            trainer = run.trainer
            st.download_button(
                "Save checkpoint", data=lambda: trainer_checkpoint(trainer), key=run_key + ":save",
                file_name=f"drift-lab-{trainer.config.data.dataset}.pt", mime="application/octet-stream",
                on_click="ignore", icon=":material/download:",
                help="the weights, optimizer state, data stream and settings: load it here or with "
                     "`python -m drift_core train --resume FILE`")
        uploader_key = run_key + ":load"
        st.file_uploader("Load a checkpoint (.pt)", type=["pt"], key=uploader_key,
                         on_change=_take_checkpoint, args=(run_key, uploader_key),
                         help="only plain weights are read (torch.load with weights_only=True): a file that "
                              "would run code is refused")
        if ss.get("checkpoint_error"):
            st.error(ss["checkpoint_error"], icon=":material/block:")
        elif ss.get("checkpoint_note"):
            st.success(ss["checkpoint_note"], icon=":material/check_circle:")


# ---- divergence: step back -------------------------------------------------------------------------
def step_back(run: Run) -> int:
    """:meth:`Run.step_back`, with a note for the page. Returns the step the run went back to."""
    step = run.step_back()
    st.session_state["step_back_note"] = (f"Stepped back to step {step}. Lower the learning rate before pressing "
                                          "Play, or it will diverge again.")
    return step


def _step_back_clicked(run_key: str) -> None:
    run = st.session_state.get(run_key)
    if run is not None:
        try:
            step_back(run)
        except ValueError as err:
            st.session_state["step_back_note"] = str(err)


def divergence_controls(run_key: str, prefix: str) -> None:
    """While the run is diverged: what happened, and a "Step back" button (Reset is in the transport row)."""
    ss = st.session_state
    run = ss.get(run_key)
    note = ss.pop("step_back_note", "")
    if note:
        st.info(note, icon=":material/undo:")
    if run is None or not run.trainer.diverged:
        return
    earlier = [s for s in run.kept_steps() if s < run.step]
    cols = st.columns([2, 3])
    cols[0].button(f"Step back to step {earlier[-1]}" if earlier else "Step back", key=prefix + "step_back",
                   icon=":material/undo:", on_click=_step_back_clicked, args=(run_key,), disabled=not earlier,
                   help="return to the newest kept state before this one (states are kept every "
                        f"{TAPE_EVERY} steps and with every kept snapshot)")
    cols[1].caption("The picture shows the last finite state. Step back, lower the learning rate, then Play; "
                    "or press Reset to start over.")


# ---- out of memory --------------------------------------------------------------------------------------
def _trainer(run_key: str):
    return getattr(st.session_state.get(run_key), "trainer", None)


def sync_after_fallback(run_key: str) -> bool:
    """After an out-of-memory fallback, make the batch-size widget and the session's config take the
    smaller batch the trainer now uses (call before the sidebar widgets exist), so the next script run
    does not ask for the batch that did not fit. Returns whether anything changed."""
    ss = st.session_state
    trainer = _trainer(run_key)
    if trainer is None or not trainer.fallback_notices:
        return False
    marker = (id(trainer), len(trainer.fallback_notices))
    if ss.get(run_key + ":fallbacks_synced") == marker:
        return False
    ss[run_key + ":fallbacks_synced"] = marker
    cfg = ss.get("config")
    if isinstance(cfg, ExperimentConfig) and cfg.train.batch_size != trainer.config.train.batch_size:
        ss["config"] = cfg.with_values({"batch_size": trainer.config.train.batch_size})
        ss["batch_size"] = trainer.config.train.batch_size
        return True
    return False


def show_fallback_notice(run_key: str) -> None:
    """The run's latest out-of-memory fallback (smaller batch or CPU) with the suggestion, if any."""
    trainer = _trainer(run_key)
    if trainer is not None and trainer.fallback_notices:
        where = "the CPU" if trainer.device.type == "cpu" else str(trainer.device)
        st.warning(f"Out of memory: {trainer.fallback_notices[-1]}. This run now uses batch size "
                   f"{trainer.config.train.batch_size} on {where}.", icon=":material/memory:")
