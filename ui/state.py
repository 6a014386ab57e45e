"""Session-scoped runs: each browser session (tab) keeps its own trainers in ``st.session_state``, so
two tabs never share or corrupt state. A run is rebuilt only when a reset field (data, start, network,
seed, uploaded points) changes or the user presses Reset; live fields are applied to the running trainer.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from drift_core.config import ConfigError, ExperimentConfig

from drift_core.run import Run, reset_changes


@dataclass
class RunEvent:
    """What happened to the run in this script run (for a one-line note in the page)."""

    kind: str = ""  # "" | "created" | "reset" | "live"
    fields: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "reset":
            return f":material/restart_alt: Restarted the run: {', '.join(self.fields)} changed." if self.fields else ":material/restart_alt: Restarted the run."
        if self.kind == "live":
            return f":material/bolt: Applied live (no reset): {', '.join(self.fields)}."
        return ""


def custom_points():
    return st.session_state.get("custom_points")


def _points_version() -> int:
    return int(st.session_state.get("custom_points_version", 0))


def needs_points(config: ExperimentConfig) -> bool:
    return config.data.dataset == "custom" and custom_points() is None


def playground_run(key: str, config: ExperimentConfig, *, force_reset: bool = False) -> tuple[Run, RunEvent]:
    """The session's run under ``key`` for ``config``: created, reset, or updated live."""
    ss = st.session_state
    run: Run | None = ss.get(key)
    version = _points_version() if config.data.dataset == "custom" else 0
    points = custom_points() if config.data.dataset == "custom" else None
    if run is None:
        ss[key] = Run.single(config, points)
        ss[key + ":points"] = version
        return ss[key], RunEvent("created")
    changed = reset_changes(run.config, config)
    if version != ss.get(key + ":points", 0):
        changed.append("uploaded points")
    if changed or force_reset:
        ss[key] = Run.single(config, points)
        ss[key + ":points"] = version
        return ss[key], RunEvent("reset", tuple(changed))
    try:
        live = run.apply(config)
    except ConfigError:  # should not happen (reset fields handled above); rebuild to be safe
        ss[key] = Run.single(config, points)
        return ss[key], RunEvent("reset")
    return run, RunEvent("live", tuple(live)) if live else RunEvent()


def compare_run(key: str, config: ExperimentConfig, fairness: bool, *, force_reset: bool = False) -> tuple[Run, RunEvent]:
    ss = st.session_state
    run: Run | None = ss.get(key)
    version = _points_version() if config.data.dataset == "custom" else 0
    points = custom_points() if config.data.dataset == "custom" else None
    if run is None:
        ss[key] = Run.compare(config, fairness, points)
        ss[key + ":points"] = version
        return ss[key], RunEvent("created")
    changed = run.needs_reset(config, fairness)
    if version != ss.get(key + ":points", 0):
        changed.append("uploaded points")
    if changed or force_reset:
        ss[key] = Run.compare(config, fairness, points)
        ss[key + ":points"] = version
        return ss[key], RunEvent("reset", tuple(changed))
    live = run.apply(config)
    return run, RunEvent("live", tuple(live)) if live else RunEvent()


def transport_buttons(prefix: str, run, *, step_label: str = "Step") -> dict[str, bool]:
    """Play / Pause / Step / Reset buttons with keys ``{prefix}play`` etc. Play and Pause set the run's
    flag in their callbacks (before the page body runs); Step and Reset are returned as clicked flags."""

    def play():
        st.session_state[prefix + "replay"] = None  # Play returns to the live view
        target = st.session_state.get(prefix + "run_key")
        current = st.session_state.get(target) if target else None
        if current is not None:
            if getattr(current, "message", "") and hasattr(current, "resume_after_divergence"):
                trainer = getattr(current, "trainer", None)
                if trainer is not None and trainer.diverged:
                    current.resume_after_divergence()
            current.playing = True

    def pause():
        target = st.session_state.get(prefix + "run_key")
        current = st.session_state.get(target) if target else None
        if current is not None:
            current.playing = False

    cols = st.columns([1, 1, 1, 1, 3])
    cols[0].button("Play", icon=":material/play_arrow:", key=prefix + "play", on_click=play, type="primary", width="stretch",
                   disabled=run.playing)
    cols[1].button("Pause", icon=":material/pause:", key=prefix + "pause", on_click=pause, width="stretch", disabled=not run.playing)
    step = cols[2].button(step_label, icon=":material/skip_next:", key=prefix + "step", width="stretch")
    reset = cols[3].button("Reset", icon=":material/replay:", key=prefix + "reset", width="stretch")
    if step or reset:
        st.session_state[prefix + "replay"] = None
    return {"step": step, "reset": reset}
