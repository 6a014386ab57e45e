"""Classroom tools of the Playground and Compare: presenter mode, guided scenarios and rows of download
buttons (what they hold: :mod:`drift_views.downloads`). The scenarios are :mod:`drift_core.scenarios`;
state is the session's."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from drift_core.run import Run
from drift_core.scenarios import SCENARIOS
from drift_views.downloads import Download, run_downloads

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


# ---- downloads ------------------------------------------------------------------------------------------
def download_row(downloads: list[Download]) -> None:
    """One row of download buttons (:class:`drift_views.downloads.Download`); a file that takes time to
    make is made when its button is clicked."""
    for column, item in zip(st.columns(len(downloads)), downloads):
        column.download_button(
            item.label,
            item.data,
            file_name=item.file_name,
            mime=item.mime,
            disabled=item.disabled,
            on_click="ignore",
            icon=f":material/{item.icon}:",
            width="stretch",
            help=item.help,
        )


def export_buttons(run: Run) -> None:
    """Download buttons for the run's exports (:func:`drift_views.downloads.run_downloads`)."""
    downloads, note = run_downloads(run, lab().view)
    download_row(downloads)
    if note:
        st.caption(note)
