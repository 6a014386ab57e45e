"""Classroom tools of the Playground and Compare: presenter mode, guided scenarios, exports and the
estimator-noise layer. The mathematics is ``drift_core``'s (:mod:`~drift_core.export`,
:mod:`~drift_core.scenarios`, :mod:`~drift_core.estimator_noise`); state is the session's."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from drift_core.export import RunExport, mp4_encoder
from drift_core.run import Run
from drift_core.scenarios import SCENARIOS

from .session import bound, lab

PRESENTER_SCALE = 1.5
"""Plots are this much taller in presenter mode."""

PAGE_CSS = (Path(__file__).with_name("page.css")).read_text(encoding="utf-8")
"""Every page's style (ui/page.css)."""
PRESENTER_CSS = (Path(__file__).with_name("presenter.css")).read_text(encoding="utf-8")
"""Presenter mode's style on top of it (ui/presenter.css)."""


# ---- presenter mode -----------------------------------------------------------------------------------
def plot_height(height: int) -> int:
    return int(height * PRESENTER_SCALE) if lab().view.presenter else height


def _exit_presenter() -> None:
    lab().set_view(presenter=False)
    if "presenter" in st.query_params:
        del st.query_params["presenter"]


def page_style() -> None:
    """The app's page style, and in presenter mode (``?presenter=1``) the presenter's: no sidebar,
    header, toolbar, layer pickers, timeline, expanders or captions (the transport buttons stay),
    larger text, metrics and pictures. The pages put the "exit" button in their header row."""
    st.markdown(f"<style>{PAGE_CSS}{PRESENTER_CSS if lab().view.presenter else ''}</style>", unsafe_allow_html=True)


def exit_presenter_button() -> None:
    st.button(
        "Exit presenter mode",
        key="presenter_exit",
        on_click=_exit_presenter,
        type="tertiary",
        icon=":material/close_fullscreen:",
    )


# ---- guided scenarios -----------------------------------------------------------------------------------
def _choose_scenario(key: str | None) -> None:
    if key in SCENARIOS:
        lab().apply_scenario(key)


def scenario_picker() -> None:
    """The guided scenarios as one row of pills and, while the chosen one's setup is still the
    session's, its "what to watch"."""
    session = lab()
    active = SCENARIOS.get(session.scenario or "")
    applies = active is not None and active.config == session.config
    st.pills(
        "Guided scenarios: one click each",
        list(SCENARIOS),
        **bound("scenario", active.key if applies else None, _choose_scenario),
        format_func=lambda key: SCENARIOS[key].title,
        help="each sets up one classic situation and says what to watch; it restarts the run",
    )
    if applies:
        st.info(f"**{active.title}.** {active.watch} Press **Play**.", icon=":material/visibility:")


# ---- exports ------------------------------------------------------------------------------------------------
def export_buttons(run: Run) -> None:
    """Download buttons for the run's exports (:class:`drift_core.export.RunExport`, drawn with the
    page's arrow layers): GIF, MP4, metrics CSV and config JSON, each file made when its button is
    clicked."""
    view = lab().view
    layers = view.layers if len(run.trainers) == 1 else view.compare_layers
    files = RunExport.of(run, layers=layers, arrow_scale=view.arrow_scale)
    frames, encoder = files.frames, mp4_encoder()
    buttons = [  # label, data, file name, type, icon, disabled, help
        ("GIF", files.gif, "run.gif", "image/gif", "gif_box", frames < 2, f"animated GIF of the {frames} kept frames"),
        (
            "MP4",
            files.mp4,
            "run.mp4",
            "video/mp4",
            "movie",
            frames < 2 or encoder is None,
            "MP4 needs an encoder: pip install imageio-ffmpeg"
            if encoder is None
            else f"H.264 video of the {frames} kept frames",
        ),
        ("Metrics CSV", files.metrics_csv, "metrics.csv", "text/csv", "table", False, None),
        (
            "Config JSON",
            files.config_json(),
            "config.json",
            "application/json",
            "data_object",
            False,
            "python -m drift_core train --config drift_lab_config.json reproduces this run",
        ),
    ]
    for col, (label, data, name, mime, icon, disabled, help) in zip(st.columns(len(buttons)), buttons):
        col.download_button(
            label,
            data,
            file_name=f"drift_lab_{name}",
            mime=mime,
            disabled=disabled,
            on_click="ignore",
            icon=f":material/{icon}:",
            width="stretch",
            help=help,
        )
    if frames < 2:
        st.caption("GIF/MP4 export needs at least two kept frames: train a few more steps.")
