"""Predict, then reveal, without Streamlit: the game's state (which particle, how far ahead, the
guess, the path it really took) and its marks on a particle figure. The Playground's ``ui.predict``
holds the widgets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from drift_core import palette
from drift_core.palette import Stroke
from drift_core.records import Snapshot
from drift_core.run import Run
from drift_core.runtime import stream

from .figures import TEXT, Style, arrow_trace

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

    def toggle(self, run: Run | None) -> None:
        """Start the game (pausing ``run`` and ringing a particle) or stop it."""
        self.active = not self.active
        if self.active and run is not None:
            run.playing = False
            self.next_round(run)

    def next_round(self, run: Run) -> None:
        """A new round on ``run`` as it is now (:meth:`new_round`)."""
        self.new_round(run.frame(evaluate=False), run.config.train.seed)

    def set_horizon(self, horizon: int) -> None:
        """Guess the place after ``horizon`` steps; a guess made for another horizon is dropped."""
        self.horizon = int(horizon)
        self.guess = self.path = None

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
