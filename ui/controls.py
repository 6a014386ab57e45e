"""Sidebar controls bound to the session's settings, and the URL round trip.

The session's :class:`~drift_core.config.ExperimentConfig` (``lab().config``) is the only copy of the
settings. Each config widget's key is the field's flat name (``K``, ``tau``, ``batch_size``...), which
is also its URL parameter and CLI ``--set`` name. Streamlit drops the state of widgets a page does not
draw, so every run gives each widget key its value from the session and a change reaches the session
through the widget's ``on_change``, which runs before the script (:func:`ui.session.bound`, through
:func:`setting`). Display settings (:class:`~drift_views.display.ViewSettings`) work the same way through
:func:`view_widget`.

A shared link is read on the session's first run (:func:`open_session`): unknown keys are ignored,
bad values kept, out-of-range ones clamped, each with a notice; after every run the URL is rewritten
with what differs from the defaults (:func:`sync_url`), so a copied link reproduces the view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from drift_core.limits import Limits
from drift_core.scenarios import SCENARIOS
from drift_views.display import START_CASES
from drift_views.setting_widgets import LOOKAHEAD_ARM_K, TOY_WIDGETS, SettingWidget

from .session import LabSession, bound, lab, uploaded

DRIFT_DETAILS = (
    "alpha",
    "scaling",
    "weighting",
    "negatives",
    "attraction_only",
    "normalize_distance",
    "kernel",
    "affinity_floor",
)
"""The drift settings in the "More drift settings" expander."""


def limits() -> Limits:
    return Limits.from_env()


# ---- the session and the URL ----------------------------------------------------------------------
def open_session() -> LabSession:
    """This session's :class:`LabSession`; on its first run the URL's settings become its own. A
    ``presenter`` parameter is honoured on every run (a link opened in an existing tab)."""
    session = lab()
    session.open_link(st.query_params.to_dict(), limits())
    session.adopt_fallbacks()
    return session


def sync_url(session: LabSession) -> None:
    """Write the configuration and the display settings that differ from the defaults into the URL (not
    the uploaded points)."""
    wanted = {**session.config.to_query(), **session.view.to_query()}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def show_notices(session: LabSession, *topics: str) -> None:
    """The link notice (dismissable) and any notices waiting under ``topics``."""
    link = session.notices.get("link")
    if link:
        cols = st.columns([8, 1])
        cols[0].info(link, icon=":material/link:")
        cols[1].button("Dismiss", key="dismiss", on_click=session.notices.pop, args=("link", None))
    for topic in topics:
        text = session.take_notice(topic)
        if text:
            st.info(text, icon=":material/info:")


# ---- binding widgets to the session -------------------------------------------------------------------
def config_widget(container, widget: SettingWidget, value: Any, write: Callable[[Any], None], key: str = "") -> None:
    """Draw ``widget`` (:mod:`drift_views.setting_widgets`) in ``container`` showing ``value``, with its
    tooltip (the field's meaning, as in the CLI's help); its key is ``key`` or else the field's name,
    and a change goes to ``write``."""
    args, shown = widget.offer(value, limits())
    getattr(container, widget.kind)(**args, help=widget.help, **bound(key or widget.field, shown, write))


def setting(container, widget: SettingWidget | str) -> None:
    """A 2D setting's widget (a field's name means its :data:`TOY_WIDGETS` entry), bound to the
    session's config: a change goes to :meth:`LabSession.set_setting`."""
    widget = TOY_WIDGETS[widget] if isinstance(widget, str) else widget
    name = widget.field
    config_widget(container, widget, lab().config.to_flat()[name], lambda new: lab().set_setting(name, new, limits()))


def view_widget(name: str) -> dict:
    """Widget kwargs for the display setting ``name`` (lists become tuples in the session)."""
    value = getattr(lab().view, name)
    if isinstance(value, tuple):
        return bound(name, list(value), lambda new: lab().set_view(**{name: tuple(new or ())}))
    return bound(name, value, lambda new: lab().set_view(**{name: new}))


# ---- callbacks ----------------------------------------------------------------------------------------
def _apply_start_case(name: str | None) -> None:
    if name in SCENARIOS:
        lab().apply_scenario(name)


# ---- the sidebar ----------------------------------------------------------------------------------------
def run_controls(session: LabSession, *, upload: bool = True) -> None:
    """Settings that define a run (changing one restarts it): data, start, network, seed."""
    sb = st.sidebar
    sb.markdown("#### :material/restart_alt: Restart the run when changed")
    sb.pills(
        "The paper's start cases (bimodal data)",
        list(START_CASES),
        format_func=START_CASES.get,
        **bound("start_case", session.scenario if session.scenario in START_CASES else None, _apply_start_case),
        help="Fig. 3 of the drifting paper: outputs start between the two modes, far away, or collapsed onto "
        "one mode (dataset bimodal, τ = 0.1, 300 steps)",
    )
    if upload:
        with sb.expander("Your own points (CSV of x,y rows)", expanded=False):
            st.file_uploader(
                "CSV file",
                type=["csv", "txt", "tsv"],
                **uploaded("upload_csv", lambda data, name: lab().take_points(data, name, limits())),
            )
            if session.points is not None:
                st.caption(f"Loaded {len(session.points.points):,} points from {session.points.description}.")
    error = session.notices.get("upload")
    if error:
        sb.error(error, icon=":material/upload_file:")
    for field in ("dataset", "init", "mode", "dimension"):
        setting(sb, field)
    for column, field in zip(sb.columns(2), ("width", "depth")):
        setting(column, field)
    setting(sb, "seed")


def live_controls(session: LabSession, *, lookahead_arm: bool = False, batch: bool = True, speed: bool = True) -> None:
    """Settings the running trainer takes without a reset. With ``lookahead_arm`` (Compare) K is the
    lookahead arm's, at least 1 (the baseline arm has K = 0)."""
    lim = limits()
    sb = st.sidebar
    sb.markdown("#### :material/bolt: Applies live")
    setting(sb, LOOKAHEAD_ARM_K if lookahead_arm else "K")
    for field in ("tau", "multi_temperature") + (("batch_size",) if batch else ()) + ("lr",):
        setting(sb, field)
    if speed:
        choices = [0] + [n for n in (1, 2, 3, 5, 10, 20, 50, 100) if n <= lim.max_steps_per_frame]
        session.set_view(steps_per_frame=min(session.view.steps_per_frame, lim.max_steps_per_frame))
        sb.select_slider(
            "Steps per frame",
            sorted(set(choices) | {session.view.steps_per_frame}),
            **view_widget("steps_per_frame"),
            format_func=lambda n: "auto" if n == 0 else str(n),
            help="training steps between two redraws; auto: as many as keep the animation "
            "smooth while training gets most of the time",
        )
    setting(sb, "steps")
    with sb.expander("More drift settings (live)"):
        for field in DRIFT_DETAILS:
            setting(st, field)
    if session.config.train.mode == "particles":
        setting(sb, "particle_step")


def display_controls(*, arrows: bool = True) -> None:
    """Display settings in the sidebar."""
    st.sidebar.markdown("#### :material/palette: Display")
    if arrows:
        st.sidebar.slider(
            "Arrow length ×",
            1,
            50,
            **view_widget("arrow_scale"),
            help="arrows are drawn this many times their true length",
        )
    st.sidebar.toggle(
        "High contrast",
        **view_widget("contrast"),
        help="larger points, darker data and thicker lines: for a projector or a bright room",
    )


def start_sidebar() -> LabSession:
    """The start of a 2D page: the session (a link's settings on its first run), its notices, and the
    sidebar's settings that restart the run."""
    session = open_session()
    show_notices(session)
    run_controls(session)
    return session


def finish_sidebar(session: LabSession, purpose: str) -> None:
    """The end of a 2D page's sidebar: the display settings, the message of a setting the engine refused
    (shown until one is accepted) and the URL; then, when the data is "custom" but nothing was uploaded,
    a hint (the points are for ``purpose``) and the page stops there."""
    display_controls()
    message = session.notices.get("setting")
    if message:
        st.sidebar.error(message)
    sync_url(session)
    if session.config.data.dataset == "custom" and session.points is None:
        st.info(
            f"Upload a CSV of x,y points in the sidebar ('Your own points') {purpose}.", icon=":material/upload_file:"
        )
        st.stop()
