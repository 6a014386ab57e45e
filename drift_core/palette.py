"""One colour-blind-safe palette for every picture Drift Lab draws: the app's views, the GIF/MP4
exports, the command line's PNGs and the Home picture.

The colours are Okabe and Ito's eight ("Color Universal Design", 2002), told apart with the common
colour-vision deficiencies. Where colour alone would carry meaning the layers also differ in line
style and width, so they stay apart in greyscale too: the drift V is a solid line, attraction V⁺
dotted, repulsion V⁻ dashed, and the lookahead terms cycle through other dash patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "OKABE_ITO",
    "Stroke",
    "DATA",
    "GENERATED",
    "V",
    "V_POS",
    "V_NEG",
    "FIELD",
    "NOISE",
    "DIFFERENCE",
    "TERMS",
    "ARMS",
    "arm_colour",
    "rgb",
    "DASH_PATTERNS",
]

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "grey": "#999999",
}


@dataclass(frozen=True)
class Stroke:
    """How one layer is drawn: colour (hex), line dash (Plotly's names) and width in pixels."""

    colour: str
    dash: str = "solid"
    width: float = 1.4


DATA = Stroke(OKABE_ITO["grey"])  # the data (positives): drawn faint, behind everything
GENERATED = Stroke(OKABE_ITO["blue"])  # the generated particles
V = Stroke(OKABE_ITO["black"], "solid", 1.6)  # the drift used for training (the app draws it in the text colour)
V_POS = Stroke(OKABE_ITO["bluish green"], "dot", 1.4)  # attraction to the data
V_NEG = Stroke(OKABE_ITO["vermillion"], "dash", 1.4)  # repulsion from the generated particles
FIELD = Stroke(OKABE_ITO["reddish purple"], "solid", 1.0)  # the field on a grid
NOISE = Stroke(OKABE_ITO["orange"], "solid", 1.0)  # V from fresh batches (estimator noise)
DIFFERENCE = Stroke(OKABE_ITO["orange"], "solid", 1.0)  # from a particle to its twin in another arm
TERMS = (  # the lookahead terms V_0, V_1, ...
    Stroke(OKABE_ITO["sky blue"], "solid"),
    Stroke(OKABE_ITO["reddish purple"], "dashdot"),
    Stroke(OKABE_ITO["orange"], "longdash"),
    Stroke(OKABE_ITO["bluish green"], "dot"),
    Stroke(OKABE_ITO["vermillion"], "dash"),
    Stroke(OKABE_ITO["yellow"], "longdashdot"),
)
ARMS = {"baseline": OKABE_ITO["blue"], "lookahead": OKABE_ITO["vermillion"], "baseline 2×lr": OKABE_ITO["sky blue"]}
"""The arms of a comparison, in curves and labels."""
_MORE = (OKABE_ITO["bluish green"], OKABE_ITO["reddish purple"], OKABE_ITO["orange"], OKABE_ITO["black"])


def arm_colour(name: str, index: int) -> str:
    """The colour of arm (or series) ``name``, the ``index``-th of its chart."""
    return ARMS.get(name, _MORE[index % len(_MORE)])


def rgb(colour: str, alpha: float | None = None) -> tuple[int, ...]:
    """A hex colour as an (r, g, b) or (r, g, b, a) tuple of 0..255 (for Pillow)."""
    value = colour.lstrip("#")
    channels = tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))
    return channels if alpha is None else (*channels, round(255 * alpha))


DASH_PATTERNS: dict[str, tuple[float, ...]] = {
    "solid": (),
    "dot": (1, 1),
    "dash": (3, 3),
    "longdash": (5, 5),
    "dashdot": (3, 1, 1, 1),
    "longdashdot": (5, 2, 1, 2),
}
"""Each dash name of :class:`Stroke` as on-off lengths in units of max(line width, 3 px), Plotly's own
patterns, so pictures drawn outside the browser (matplotlib) dash the layers as the app does."""
