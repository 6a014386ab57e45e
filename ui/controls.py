"""Sidebar controls bound to the session's settings, and the URL round trip.

The session's :class:`~drift_core.config.ExperimentConfig` (``lab().config``) is the only copy of the
settings. Each config widget's key is the field's flat name (``K``, ``tau``, ``batch_size``...), which
is also its URL parameter and CLI ``--set`` name. Streamlit drops the state of widgets a page does not
draw, so every run gives each widget key its value from the session and a change reaches the session
through the widget's ``on_change``, which runs before the script (:func:`ui.session.bound`, through
:func:`_field`). Display settings (:class:`~drift_views.display.ViewSettings`) work the same way through
:func:`view_widget`.

A shared link is read on the session's first run (:func:`open_session`): unknown keys are ignored,
bad values kept, out-of-range ones clamped, each with a notice; after every run the URL is rewritten
with what differs from the defaults (:func:`sync_url`), so a copied link reproduces the view.
"""

from __future__ import annotations

import streamlit as st

from drift_core.config import MODES, ExperimentConfig
from drift_core.data.toy2d import SAMPLERS
from drift_core.drift import KERNELS
from drift_core.limits import Limits
from drift_core.lookahead import NEGATIVES, SCALINGS, WEIGHTINGS
from drift_core.scenarios import SCENARIOS
from drift_views.display import (
    BATCH_OPTIONS,
    DIMENSION_OPTIONS,
    FLOOR_OPTIONS,
    KERNEL_LABELS,
    LR_OPTIONS,
    MODE_LABELS,
    START_CASES,
    START_LABELS,
    STEP_OPTIONS,
    TAU_OPTIONS,
    WIDTH_OPTIONS,
)

from .session import LabSession, bound, lab

MEANINGS = ExperimentConfig.meanings()


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
def _field(name: str, shown=None, help: str | None = None) -> dict:
    """Widget kwargs for the config field ``name`` (its key, URL parameter and ``--set`` name), showing
    the session's value (or ``shown``, the value clamped to what the widget offers), with the field's
    meaning (:meth:`~drift_core.config.SectionedConfig.meanings`, as in the CLI's help) or ``help`` as
    its tooltip."""
    value = lab().config.to_flat()[name] if shown is None else shown
    return {"help": help or MEANINGS[name], **bound(name, value, lambda new: lab().set_setting(name, new, limits()))}


def view_widget(name: str) -> dict:
    """Widget kwargs for the display setting ``name`` (lists become tuples in the session)."""
    value = getattr(lab().view, name)
    if isinstance(value, tuple):
        return bound(name, list(value), lambda new: lab().set_view(**{name: tuple(new or ())}))
    return bound(name, value, lambda new: lab().set_view(**{name: new}))


def _options(base, name: str) -> list:
    """``base`` and the session's value of ``name`` (a value from a link may lie between the steps)."""
    return sorted(set(base) | {lab().config.to_flat()[name]})


# ---- callbacks ----------------------------------------------------------------------------------------
def _apply_start_case(name: str | None) -> None:
    if name in SCENARIOS:
        lab().apply_scenario(name)


def _take_upload() -> None:
    """on_change of the CSV uploader (what the session does with it: :meth:`LabSession.take_points`)."""
    file = st.session_state.get("upload_csv")
    if file is not None:
        lab().take_points(file.getvalue(), file.name, limits())


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
            st.file_uploader("CSV file", type=["csv", "txt", "tsv"], key="upload_csv", on_change=_take_upload)
            if session.points is not None:
                st.caption(f"Loaded {len(session.points.points):,} points from {session.points.description}.")
    error = session.notices.get("upload")
    if error:
        sb.error(error, icon=":material/upload_file:")
    sb.selectbox(
        "Dataset",
        list(SAMPLERS) + ["custom"],
        **_field("dataset"),
        format_func=lambda d: "your uploaded points" if d == "custom" else d,
    )
    sb.selectbox("Start", list(START_LABELS), **_field("init"), format_func=START_LABELS.get)
    sb.segmented_control("What moves the points", MODES, **_field("mode"), format_func=MODE_LABELS.get)
    sb.select_slider("Dimensions D", _options(DIMENSION_OPTIONS, "dimension"), **_field("dimension"))
    c1, c2 = sb.columns(2)
    c1.select_slider("Width", _options(WIDTH_OPTIONS, "width"), **_field("width"))
    c2.select_slider("Depth", _options(range(1, 7), "depth"), **_field("depth"))
    sb.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, **_field("seed"))


def live_controls(session: LabSession, *, lookahead_arm: bool = False, batch: bool = True, speed: bool = True) -> None:
    """Settings the running trainer takes without a reset. With ``lookahead_arm`` (Compare) K is the
    lookahead arm's, at least 1 (the baseline arm has K = 0)."""
    lim = limits()
    sb = st.sidebar
    sb.markdown("#### :material/bolt: Applies live")
    top_k = max(1, min(8, lim.max_k))
    if lookahead_arm:
        sb.slider(
            "K of the lookahead arm",
            1,
            top_k,
            **_field(
                "K",
                min(max(1, session.config.drift.K), top_k),
                "lookahead terms after the base term; the baseline arm has K = 0",
            ),
        )
    else:
        sb.slider(
            "K (lookahead terms; 0 = baseline)",
            0,
            min(8, lim.max_k),
            **_field("K", min(session.config.drift.K, lim.max_k)),
        )
    sb.select_slider(
        "Temperature τ (log scale)", _options(TAU_OPTIONS, "tau"), **_field("tau"), format_func=lambda v: f"{v:g}"
    )
    sb.toggle("Multi-temperature (τ × {0.4, 1, 4})", **_field("multi_temperature"))
    if batch:
        sizes = [b for b in _options(BATCH_OPTIONS, "batch_size") if b <= lim.max_batch]
        sb.select_slider("Batch size N", sizes or [session.config.train.batch_size], **_field("batch_size"))
    sb.select_slider(
        "Learning rate (log scale)", _options(LR_OPTIONS, "lr"), **_field("lr"), format_func=lambda v: f"{v:g}"
    )
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
    sb.number_input(
        "Step budget",
        min_value=0,
        max_value=1_000_000,
        step=100,
        **_field("steps", min(session.config.train.steps, 1_000_000)),
    )
    with sb.expander("More drift settings (live)"):
        st.slider(
            "α (step between lookahead terms)",
            0.0,
            3.0,
            step=0.1,
            **_field("alpha", min(max(session.config.drift.alpha, 0.0), 3.0)),
        )
        st.selectbox("Term scaling", list(SCALINGS), **_field("scaling"))
        st.selectbox("Term weighting", list(WEIGHTINGS), **_field("weighting"))
        st.selectbox("Lookahead negatives", list(NEGATIVES), **_field("negatives"))
        st.toggle("Attraction only (ablation)", **_field("attraction_only"))
        st.toggle("Normalise distances", **_field("normalize_distance"))
        st.selectbox("Kernel", KERNELS, **_field("kernel"), format_func=KERNEL_LABELS.get)
        st.select_slider(
            "Affinity floor",
            _options(FLOOR_OPTIONS, "affinity_floor"),
            **_field("affinity_floor"),
            format_func=lambda v: "off" if v == 0 else f"{v:g}",
        )
    if session.config.train.mode == "particles":
        sb.select_slider(
            "Particle step η",
            _options(STEP_OPTIONS, "particle_step"),
            **_field("particle_step"),
            format_func=lambda v: f"{v:g}",
        )


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
