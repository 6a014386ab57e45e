"""Predict, then reveal (a teacher's tool on the Playground): one particle is highlighted, the class
clicks where it will be after the next step (or after 50 steps), Reveal trains those steps, and the
picture shows the guess next to the truth, the path the particle took and the drift V that moved it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from drift_core import palette
from drift_core.palette import Stroke
from drift_core.records import Snapshot
from drift_core.run import Run
from drift_core.runtime import stream
from drift_views.figures import TEXT, Style, arrow_trace

from .session import lab

HORIZONS = (1, 50)
"""Steps ahead a guess can be about."""


@dataclass
class Prediction:
    """The Playground's prediction game: which particle, how far ahead, the guess and what happened."""

    active: bool = False
    particle: int = 0
    horizon: int = 1
    start: tuple[float, float] | None = None  # where the particle was when the round began
    drift: tuple[float, float] | None = None  # V at that point then
    guess: tuple[float, float] | None = None
    path: list[tuple[float, float]] | None = None  # where it went, step by step, once revealed
    rounds: int = 0

    def new_round(self, snap: Snapshot, seed: int) -> None:
        """Highlight another particle (the same sequence for a seed: a class can replay a lesson)."""
        self.rounds += 1
        generator = stream(seed, "prediction")
        picks = torch.randint(len(snap.generated), (self.rounds,), generator=generator)
        self.particle = int(picks[-1])
        self.start = tuple(float(c) for c in snap.generated[self.particle])
        self.drift = tuple(float(c) for c in snap.v[self.particle])
        self.guess, self.path = None, None

    def take_click(self, click: dict | None) -> None:
        if click and self.path is None and self.start is not None:
            self.guess = (float(click["x"]), float(click["y"]))

    def reveal(self, run: Run) -> None:
        """Train ``horizon`` steps (the run's own steps: it really learns them) and record the path."""
        path = [self.start]
        for _ in range(self.horizon):
            if run.advance(1).paused_reason:
                break
            path.append(tuple(float(c) for c in run.frame(evaluate=False).generated[self.particle]))
        self.path = path

    def outcome(self) -> str:
        """The round in one sentence (before the reveal: what to do)."""
        ahead = "the next step" if self.horizon == 1 else f"{self.horizon} steps"
        if self.path is None:
            if self.guess is None:
                return f"**Predict:** click where the ringed particle will be after {ahead}, then press Reveal."
            return f"Your guess is marked ✕. Press **Reveal** to train {ahead} and see where it really goes."
        truth, start = np.array(self.path[-1]), np.array(self.start)
        moved = float(np.linalg.norm(truth - start))
        text = f"It moved {moved:.3g}"
        if self.guess is not None:
            text += f"; your guess was {float(np.linalg.norm(truth - np.array(self.guess))):.3g} away"
        drift = float(np.linalg.norm(self.drift)) if self.drift else 0.0
        return (
            f"{text}. The drift V asked for a move of {drift:.3g} at the start (the arrow): the network "
            "moves all particles together through shared weights, so the step is not exactly V. "
            "Press **New round** for another particle."
        )


def overlay(figure: dict, game: Prediction, style: Style) -> None:
    """The game's marks on a particle figure: the ring, the guess, the path, the truth and V at the start."""
    if game.start is None:
        return
    sx, sy = game.start
    marks: list[dict] = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": [sx],
            "y": [sy],
            "name": "the particle to predict",
            "hoverinfo": "skip",
            "marker": {"symbol": "circle-open", "size": 22, "color": TEXT, "line": {"width": 3}},
        },
    ]
    if game.drift is not None:
        marks.append(
            arrow_trace(
                np.array([game.start]),
                np.array([game.drift]),
                1.0,
                "V at the start (true length)",
                Stroke(palette.OKABE_ITO["orange"], width=3.0),
                style,
            )
        )
    if game.guess is not None:
        marks.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [game.guess[0]],
                "y": [game.guess[1]],
                "name": "your guess",
                "hoverinfo": "skip",
                "marker": {
                    "symbol": "x-thin",
                    "size": 18,
                    "color": palette.OKABE_ITO["reddish purple"],
                    "line": {"width": 4, "color": palette.OKABE_ITO["reddish purple"]},
                },
            }
        )
    if game.path is not None:
        xs, ys = zip(*game.path)
        marks.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(xs),
                "y": list(ys),
                "name": "where it went",
                "hoverinfo": "skip",
                "line": {"color": palette.OKABE_ITO["bluish green"], "width": 3},
            }
        )
        marks.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [xs[-1]],
                "y": [ys[-1]],
                "name": "where it is now",
                "hoverinfo": "skip",
                "marker": {"symbol": "star", "size": 18, "color": palette.OKABE_ITO["bluish green"]},
            }
        )
    figure["data"].extend(marks)


def _toggle(page: str) -> None:
    session = lab()
    game = session.page(f"{page}:predict", Prediction)
    game.active = not game.active
    run = session.runs.get(page)
    if game.active and run is not None:
        run.playing = False
        game.new_round(run.frame(evaluate=False), run.config.train.seed)


def _reveal(page: str) -> None:
    session = lab()
    run = session.runs.get(page)
    if run is not None:
        session.page(f"{page}:predict", Prediction).reveal(run)


def _new_round(page: str) -> None:
    session = lab()
    run = session.runs.get(page)
    if run is not None:
        session.page(f"{page}:predict", Prediction).new_round(run.frame(evaluate=False), run.config.train.seed)


def _horizon(page: str) -> None:
    game = lab().page(f"{page}:predict", Prediction)
    game.horizon = int(st.session_state["predict_horizon"])
    game.guess = game.path = None


def controls(page: str, run: Run) -> Prediction:
    """The game's buttons (beside the picture): start/stop, how far ahead, Reveal, New round."""
    game = lab().page(f"{page}:predict", Prediction)
    if not game.active:
        st.button(
            "Predict, then reveal",
            key="predict",
            icon=":material/psychology:",
            on_click=_toggle,
            args=(page,),
            help="pause, guess where a particle will be after the next step (or 50), then see where it goes",
        )
        return game
    st.session_state["predict_horizon"] = game.horizon
    st.segmented_control(
        "Predict the particle's place after",
        HORIZONS,
        key="predict_horizon",
        on_change=_horizon,
        args=(page,),
        format_func=lambda h: f"{h} step" + ("s" if h > 1 else ""),
    )
    cols = st.columns(3)
    cols[0].button(
        "Reveal",
        key="predict_reveal",
        type="primary",
        on_click=_reveal,
        args=(page,),
        disabled=game.path is not None or run.playing,
        width="stretch",
    )
    cols[1].button("New round", key="predict_new", on_click=_new_round, args=(page,), width="stretch")
    cols[2].button("Done", key="predict", on_click=_toggle, args=(page,), width="stretch")
    st.markdown(game.outcome())
    return game
