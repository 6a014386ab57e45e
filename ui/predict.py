"""The widgets of predict, then reveal (a teacher's tool on the Playground): one particle is
highlighted, the class clicks where it will be after the next step (or after 50 steps), Reveal trains
those steps, and the picture shows the guess next to the truth, the path the particle took and the
drift V that moved it. The game and its marks are :mod:`drift_views.predict`."""

from __future__ import annotations

from functools import partial

import streamlit as st

from drift_core.run import Run
from drift_views.predict import HORIZONS, Prediction

from .session import bound, lab, on_session


def controls(page: str, run: Run) -> Prediction:
    """The game's buttons (beside the picture): start/stop, how far ahead, Reveal, New round."""
    game = lab().page(f"{page}:predict", Prediction)
    if not game.active:
        st.button(
            "Predict, then reveal",
            key="predict",
            icon=":material/psychology:",
            on_click=on_session,
            args=("predict", page, "toggle"),
            help="pause, guess where a particle will be after the next step (or 50), then see where it goes",
        )
        return game
    st.segmented_control(
        "Predict the particle's place after",
        HORIZONS,
        **bound("predict_horizon", game.horizon, partial(on_session, "predict", page, "set_horizon")),
        format_func=lambda h: f"{h} step" + ("s" if h > 1 else ""),
    )
    cols = st.columns(3)
    cols[0].button(
        "Reveal",
        key="predict_reveal",
        type="primary",
        on_click=on_session,
        args=("predict", page, "reveal"),
        disabled=game.path is not None or run.playing,
        width="stretch",
    )
    cols[1].button(
        "New round", key="predict_new", on_click=on_session, args=("predict", page, "next_round"), width="stretch"
    )
    cols[2].button("Done", key="predict", on_click=on_session, args=("predict", page, "toggle"), width="stretch")
    st.markdown(game.outcome())
    return game
