"""Figure builders: Plotly figures (as plain dicts) from Snapshot / StepInspection numpy arrays, and
the metric curves. No Streamlit calls and no mathematics beyond drawing: fields, densities and
inspections come from ``drift_core``; colours and line styles from :mod:`drift_core.palette`.

Particles use Scattergl (WebGL); each arrow layer is ONE trace of line segments separated by gaps;
axes are fixed to the run's bounds and ``uirevision`` keeps a user's zoom across redraws. Colours that
must follow the app's theme are the tokens :data:`TEXT` and :data:`GRID`, which the in-place view
(``ui.live_plot`` in the app) replaces with the theme's colours in the browser; the plot area is transparent,
so a dark theme gives a dark picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch

from drift_core import palette
from drift_core.config import DriftConfig
from drift_core.estimator_noise import EstimatorNoise, estimator_noise
from drift_core.history import History
from drift_core.palette import Stroke
from drift_core.probes import NeighboursByDimension, density_on_grid, field_on_grid, grid_points
from drift_core.records import Snapshot

TEXT = "theme:text"
"""Drawn in the theme's text colour (black on light, light on dark): the drift V, outlines."""
GRID = "theme:grid"
"""The theme's text colour, faint: grid lines."""
V = Stroke(TEXT, palette.V.dash, palette.V.width)
TERM_COLOURS = tuple(stroke.colour for stroke in palette.TERMS)

LAYERS = ("V", "V⁺", "V⁻", "lookahead terms", "field on a grid", "density")
"""Toggleable layers of the particle view (data and particles are always drawn); the first four are
offered on Compare."""
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass(frozen=True)
class Style:
    """Text size (px) and contrast of a figure: presenter mode raises the text to a projector's size
    (ticks and legends at least 18 px) and high contrast makes points larger and lines thicker."""

    text: int = 13
    contrast: bool = False

    @classmethod
    def of(cls, view) -> Style:
        """The style for a :class:`drift_views.display.ViewSettings`."""
        return cls(text=19 if view.presenter else 13, contrast=bool(view.contrast))

    def width(self, stroke: Stroke) -> float:
        return stroke.width * (1.8 if self.contrast else 1.0)

    def size(self, size: float) -> float:
        return size * (1.6 if self.contrast else 1.0) * (1.25 if self.text > 15 else 1.0)


def fast_figure(figure: dict) -> go.Figure:
    """A Plotly Figure from one of this module's dicts without Plotly's per-property validation, which
    costs several times the figure itself (benchmarks/RESULTS.md); the builders' output is validated in
    full by the tests."""
    return go.Figure(figure, _validate=False)


def figure_json(figure: dict | go.Figure) -> str:
    """The figure (a ``go.Figure`` or one of this module's dicts) as Plotly JSON; numpy arrays travel as
    typed binary. A dict goes through :func:`fast_figure`: serialising that is faster than serialising
    the dict itself (benchmarks/RESULTS.md)."""
    return pio.to_json(fast_figure(figure) if isinstance(figure, dict) else figure, validate=False)


def segments(starts: np.ndarray, vectors: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """x and y coordinates of line segments start -> start + scale * vector, separated by NaN gaps:
    [3n] each (start, end, gap) for starts, vectors [n, 2]."""
    n = len(starts)
    out = np.full((n, 3, 2), np.nan, dtype=np.float64)
    out[:, 0] = starts
    out[:, 1] = starts + scale * vectors
    flat = out.reshape(-1, 2)
    return flat[:, 0], flat[:, 1]


def grid_arrows(grid: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Grid arrows for drawing: the field [G, 2] rescaled so the longest arrow is 0.9 of the grid spacing
    (far from the particles the field is much larger than near them, and true-length arrows would cross
    the whole picture); directions and relative lengths are kept."""
    xs = np.unique(np.round(grid[:, 0], 9))
    spacing = float(xs[1] - xs[0]) if len(xs) > 1 else 1.0
    longest = float(np.sqrt((field**2).sum(1)).max()) if len(field) else 0.0
    return field * (0.9 * spacing / longest) if longest > 0 else field


def scatter_trace(points: np.ndarray, name: str, colour: str, size: float = 4.0, **extra) -> dict:
    return {
        "type": "scattergl",
        "mode": "markers",
        "x": points[:, 0],
        "y": points[:, 1],
        "name": name,
        "marker": {"color": colour, "size": size},
        **extra,
    }


def arrow_trace(
    starts: np.ndarray, vectors: np.ndarray, scale: float, name: str, stroke: Stroke, style: Style = Style()
) -> dict:
    """One layer of arrows, start -> start + scale * vector, drawn with ``stroke``."""
    x, y = segments(starts, vectors, scale)
    return {
        "type": "scattergl",
        "mode": "lines",
        "x": x,
        "y": y,
        "name": name,
        "hoverinfo": "skip",
        "line": {"color": stroke.colour, "width": style.width(stroke), "dash": stroke.dash},
        "connectgaps": False,
    }


def _axis(style: Style, **extra) -> dict:
    return {"zeroline": False, "gridcolor": GRID, "linecolor": GRID, "tickfont": {"size": style.text - 1}, **extra}


def base_layout(
    bounds: Sequence[float], *, title: str = "", height: int = 480, uirevision: str = "drift", style: Style = Style()
) -> dict:
    x0, x1, y0, y1 = bounds
    return {
        "title": {"text": title, "x": 0.02, "font": {"size": style.text + 2}},
        "height": height,
        "margin": {
            "l": 30 + 2 * style.text,
            "r": 10,
            "t": 2 * style.text + 16 if title else 10,
            "b": 2 * style.text + 8,
        },
        "xaxis": _axis(style, range=[x0, x1], autorange=False, constrain="domain"),
        "yaxis": _axis(style, range=[y0, y1], autorange=False, scaleanchor="x", scaleratio=1),
        "legend": {"orientation": "h", "y": -0.1, "font": {"size": style.text - 1}},
        "uirevision": uirevision,
        "plot_bgcolor": "rgba(0,0,0,0)",
        "dragmode": "pan",
    }


def particle_figure(
    snap,
    bounds: Sequence[float],
    layers: Iterable[str] = ("V",),
    *,
    arrow_scale: float = 10.0,
    grid: np.ndarray | None = None,
    grid_field: np.ndarray | None = None,
    density: np.ndarray | None = None,
    title: str = "",
    height: int = 480,
    other: np.ndarray | None = None,
    other_name: str = "",
    uirevision: str = "drift",
    style: Style = Style(),
) -> dict:
    """Data (faint), generated particles and the chosen arrow layers for one Snapshot.

    Args:
        snap: a :class:`drift_core.records.Snapshot`.
        layers: names from :data:`LAYERS`.
        arrow_scale: arrows are drawn ``arrow_scale`` times their true length (V is a small step).
        grid, grid_field: points [G, 2] and the field there [G, 2] (for "field on a grid").
        density: [R, R] density over ``bounds`` (for "density").
        other: the same particles in another run [n, 2]: drawn as difference segments to them.
    """
    layers = set(layers)
    traces: list[dict] = []
    x0, x1, y0, y1 = bounds
    if "density" in layers and density is not None:
        r = density.shape[0]
        blue = ",".join(str(c) for c in palette.rgb(palette.GENERATED.colour))
        traces.append(
            {
                "type": "heatmap",
                "z": density,
                "x": np.linspace(x0, x1, r),
                "y": np.linspace(y0, y1, r),
                "colorscale": [[0, f"rgba({blue},0)"], [1, f"rgba({blue},0.5)"]],
                "showscale": False,
                "hoverinfo": "skip",
                "name": "density",
            }
        )
    traces.append(
        scatter_trace(
            snap.positives,
            "data",
            palette.DATA.colour,
            style.size(4),
            opacity=0.85 if style.contrast else 0.6 if style.text > 15 else 0.45,
        )
    )
    if "field on a grid" in layers and grid is not None and grid_field is not None:
        traces.append(
            arrow_trace(
                grid, grid_arrows(grid, grid_field), 1.0, "V on a grid (longest = one cell)", palette.FIELD, style
            )
        )
    g = snap.generated
    if other is not None:
        traces.append(arrow_trace(g, other - g, 1.0, f"difference to {other_name}", palette.DIFFERENCE, style))
    if "lookahead terms" in layers:
        for k, term in enumerate(snap.terms):
            traces.append(
                arrow_trace(
                    snap.points[k],
                    term,
                    arrow_scale,
                    f"V{str(k).translate(SUBSCRIPTS)}",
                    palette.TERMS[k % len(palette.TERMS)],
                    style,
                )
            )
    if "V⁺" in layers:
        traces.append(arrow_trace(g, snap.v_pos, arrow_scale, "V⁺ attraction", palette.V_POS, style))
    if "V⁻" in layers:
        traces.append(arrow_trace(g, -snap.v_neg, arrow_scale, "−V⁻ repulsion", palette.V_NEG, style))
    if "V" in layers:
        traces.append(arrow_trace(g, snap.v, arrow_scale, "V", V, style))
    traces.append(scatter_trace(g, "generated", palette.GENERATED.colour, style.size(5)))
    return {
        "data": traces,
        "layout": base_layout(bounds, title=title, height=height, uirevision=uirevision, style=style),
    }


NOTHING_YET = {
    "text": "no steps yet: press Play or Step",
    "xref": "paper",
    "yref": "paper",
    "x": 0.5,
    "y": 0.5,
    "showarrow": False,
    "opacity": 0.6,
}
"""The note a curve without any point shows in its middle."""


def curves_figure(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_title: str,
    y_title: str,
    log_y: bool = False,
    height: int = 220,
    uirevision: str = "curves",
    style: Style = Style(),
) -> dict:
    """A line chart, one line per series ({name: (xs, ys)}). With ``log_y`` the y axis is logarithmic
    once the values span more than a decade (and only positive values are drawn: a log axis has no
    place for 0). Drawn in place by :class:`ui.live_plot.LiveView`."""
    traces, positive = [], []
    for index, (name, (xs, ys)) in enumerate(series.items()):
        x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log_y else True)
        positive.extend(y[keep])
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers" if keep.sum() < 3 else "lines",
                "name": name,
                "x": x[keep],
                "y": y[keep],
                "line": {
                    "color": palette.arm_colour(name, index),
                    "width": 2.5 if style.contrast else 2,
                    "dash": ("solid", "dash", "dot", "dashdot")[index % 4],
                },
            }
        )
    log = log_y and len(positive) > 1 and max(positive) > 10 * min(positive)
    xs_all = [x for xs, _ in series.values() for x in xs]
    short = x_title == "step" and (not xs_all or max(xs_all) < 10)  # a few steps: no ticks at half steps
    legend = len(series) > 1
    # the title on top, the legend on its own row under it: side by side they collided in narrow panels
    # and at presenter sizes
    legend_row = style.text + 12 if legend else 0
    # nothing to draw yet (step 0): say what brings the curve, instead of empty axes
    empty = (
        []
        if any(len(trace["x"]) for trace in traces)
        else [NOTHING_YET | {"font": {"size": style.text, "color": TEXT}}]
    )
    return {
        "data": traces,
        "layout": {
            "title": {
                "text": title,
                "x": 0.02,
                "xanchor": "left",
                "yref": "container",
                "y": 1,
                "yanchor": "top",
                "pad": {"t": 6},
                "font": {"size": style.text + 1},
            },
            "height": height + legend_row,
            "uirevision": uirevision,
            "plot_bgcolor": "rgba(0,0,0,0)",
            "margin": {
                "l": 30 + 2 * style.text,
                "r": 10,
                "t": 2 * style.text + 12 + legend_row,
                "b": 2 * style.text + 14,
            },
            "showlegend": legend,
            "annotations": empty,
            "legend": {
                "orientation": "h",
                "y": 1.02,
                "yanchor": "bottom",
                "x": 0,
                "xanchor": "left",
                "font": {"size": style.text - 1},
            },
            "xaxis": _axis(
                style,
                title={"text": x_title, "font": {"size": style.text - 1}},
                rangemode="tozero",
                tickformat=",d" if x_title == "step" else ".3~g",
                **({"range": [0, 10]} if short else {}),
            ),
            "yaxis": _axis(
                style,
                title={"text": y_title, "font": {"size": style.text - 1}, "standoff": 6},
                type="log" if log else "linear",
                tickformat=".1~e" if log else ".3~g",
                rangemode="normal" if log else "tozero",
                automargin=True,  # room for the tick labels and the title beside them, at any text size
            ),
        },
    }


def kernel_matrix_figure(w_pos: np.ndarray, w_neg: np.ndarray, *, height: int = 320) -> dict:
    """Heatmap of the cross-weighted kernel weights [W+ | W-] (rows: generated particles; columns:
    positives then negatives)."""
    p = w_pos.shape[1]
    z = np.concatenate([w_pos, w_neg], 1)
    return {
        "data": [{"type": "heatmap", "z": z, "colorscale": "Blues", "colorbar": {"title": {"text": "weight"}}}],
        "layout": {
            "height": height,
            "margin": {"l": 40, "r": 10, "t": 30, "b": 40},
            "plot_bgcolor": "rgba(0,0,0,0)",
            "title": {"text": "kernel weights: W⁺ (positives) | W⁻ (negatives = generated)", "font": {"size": 13}},
            "xaxis": {"title": {"text": "target index"}},
            "yaxis": {"title": {"text": "particle i"}, "autorange": "reversed"},
            "shapes": [
                {
                    "type": "line",
                    "x0": p - 0.5,
                    "x1": p - 0.5,
                    "y0": -0.5,
                    "y1": w_pos.shape[0] - 0.5,
                    "line": {"color": TEXT, "width": 2},
                }
            ],
        },
    }


def lens_figure(ins, index: int, bounds: Sequence[float], *, height: int = 460) -> dict:
    """Kernel lens of particle ``index`` of a StepInspection: positives and negatives sized by their
    weight to it, a circle at distance tau around it."""
    i = int(index)
    x = ins.outputs
    w_pos, w_neg = ins.w_pos[i], ins.w_neg[i]
    top = max(float(w_pos.max(initial=0)), float(w_neg.max(initial=0)), 1e-30)
    size = lambda w: 3 + 22 * np.sqrt(w / top)  # noqa: E731
    centre = x[i]
    tau = ins.tau
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": ins.positives[:, 0],
            "y": ins.positives[:, 1],
            "name": "positives (size = W⁺ weight)",
            "marker": {"color": palette.V_POS.colour, "size": size(w_pos), "opacity": 0.7},
            "customdata": w_pos,
            "hovertemplate": "W⁺ = %{customdata:.3g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": x[:, 0],
            "y": x[:, 1],
            "name": "negatives = generated (size = W⁻ weight)",
            "marker": {"color": palette.V_NEG.colour, "size": size(w_neg), "opacity": 0.6, "symbol": "diamond"},
            "customdata": np.stack([np.arange(len(x)), w_neg], 1),
            "hovertemplate": "particle %{customdata[0]:.0f}, W⁻ = %{customdata[1]:.3g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": [centre[0]],
            "y": [centre[1]],
            "name": f"particle {i}",
            "marker": {"color": TEXT, "size": 14, "symbol": "x"},
            "hoverinfo": "skip",
        },
    ]
    traces.append(arrow_trace(centre[None, :], ins.v[i : i + 1], 1.0, "V (true length)", Stroke(TEXT, width=2.5)))
    layout = base_layout(
        bounds, title=f"kernel lens of particle {i}: circle at distance τ = {tau:g}", height=height, uirevision="lens"
    )
    layout["shapes"] = [
        {
            "type": "circle",
            "xref": "x",
            "yref": "y",
            "x0": centre[0] - tau,
            "x1": centre[0] + tau,
            "y0": centre[1] - tau,
            "y1": centre[1] + tau,
            "line": {"color": TEXT, "dash": "dot"},
        }
    ]
    layout["clickmode"] = "event+select"
    return {"data": traces, "layout": layout}


def visible_scale(vectors: np.ndarray, bounds: Sequence[float], share: float = 0.05) -> float:
    """A drawing scale at which the median arrow of ``vectors`` [n, 2] is ``share`` of the view's width
    (an untrained network's drift can be far too short to see at its true length)."""
    lengths = np.sqrt((np.asarray(vectors, dtype=np.float64) ** 2).sum(1))
    median = float(np.median(lengths)) if len(lengths) else 0.0
    return share * (bounds[1] - bounds[0]) / median if median > 0 else 1.0


def stage_figure(
    ins, draws: frozenset[str], bounds: Sequence[float], *, height: int = 460, style: Style = Style()
) -> dict:
    """The particle picture of one Inspector stage: the generated particles plus what ``draws`` names
    ("noise", "data", "attraction", "lookahead", "targets", "moved"; see ``ui.inspector_view.STAGES``).
    Arrows are drawn at one scale per step, chosen so they can be seen; the legend says which."""
    x, pos = ins.outputs, ins.positives
    if "noise" in draws:
        trace = scatter_trace(ins.noise[:, :2], "noise ε (first two of its dimensions)", palette.DATA.colour, 6)
        return {
            "data": [trace],
            "layout": base_layout(
                (-3.5, 3.5, -3.5, 3.5), title="noise ε ~ N(0, I)", height=height, uirevision="stage-noise", style=style
            ),
        }
    scale = visible_scale(ins.v, bounds)
    times = "" if abs(scale - 1) < 1e-9 else f" (drawn ×{scale:.2g})"
    traces: list[dict] = []
    if "data" in draws:
        traces.append(scatter_trace(pos, "positives (data batch)", palette.V_POS.colour, style.size(6), opacity=0.45))
    if "attraction" in draws:
        traces.append(arrow_trace(x, ins.v_pos, scale, "V⁺ attraction" + times, palette.V_POS, style))
        traces.append(arrow_trace(x, -ins.v_neg, scale, "−V⁻ repulsion", palette.V_NEG, style))
        traces.append(arrow_trace(x, ins.terms[0], scale, "V₀ = V⁺ − V⁻", V, style))
    if "lookahead" in draws:
        for k, (z, t) in enumerate(zip(ins.points, ins.terms)):
            stroke = palette.TERMS[k % len(palette.TERMS)]
            name = str(k).translate(SUBSCRIPTS)
            if k > 0:
                traces.append(scatter_trace(z, f"z{name}", stroke.colour, style.size(4), opacity=0.7))
            traces.append(arrow_trace(z, t, scale, f"V{name}" + (times if k == 0 else ""), stroke, style))
    if "targets" in draws:
        traces.append(arrow_trace(x, ins.v, scale, "x → x + V" + times, V, style))
        traces.append(
            scatter_trace(
                x + scale * ins.v, "drifted targets x + V", palette.OKABE_ITO["orange"], style.size(5), opacity=0.8
            )
        )
    if "moved" in draws:
        traces.append(
            arrow_trace(x, ins.v, scale, "target move V" + times, Stroke(palette.OKABE_ITO["orange"], width=2), style)
        )
        traces.append(arrow_trace(x, ins.achieved, scale, "achieved move", V, style))
        traces.append(
            scatter_trace(
                x + scale * ins.achieved, "outputs after the step", palette.OKABE_ITO["reddish purple"], style.size(5)
            )
        )
    traces.append(
        scatter_trace(
            x,
            "generated x = f(ε)",
            palette.GENERATED.colour,
            style.size(6),
            customdata=np.arange(len(x)),
            hovertemplate="particle %{customdata}<extra></extra>",
        )
    )
    layout = base_layout(bounds, height=height, uirevision="stage", style=style)
    layout["hovermode"] = "closest"  # a click on a particle opens its kernel lens
    return {"data": traces, "layout": layout}


def _series(rows: Mapping[str, list[dict]], x: str, y: str) -> dict[str, tuple[list, list]]:
    """{name: (xs, ys)} of the rows that have ``y``, for :func:`curves_figure`."""
    return {name: ([r[x] for r in arm if y in r], [r[y] for r in arm if y in r]) for name, arm in rows.items()}


def energy_figure(histories: Mapping[str, History], title: str, *, height: int = 320, style: Style = Style()) -> dict:
    """The energy distance against step, one line per history (log axis: it spans decades)."""
    return curves_figure(
        _series({name: history.metric_rows(300) for name, history in histories.items()}, "step", "energy"),
        title=title,
        x_title="step",
        y_title="energy distance",
        log_y=True,
        height=height,
        style=style,
    )


def run_curves(histories: Mapping[str, History], *, height: int = 200, style: Style = Style()) -> list[dict]:
    """A run's three curves: energy distance against step and against training time, and the loss
    against step, one line per arm (log axes: the values span decades). A single arm's line is named
    after its quantity."""
    metrics = {name: h.metric_rows(300) for name, h in histories.items()}
    records = {name: h.record_rows(300) for name, h in histories.items()}
    single = len(histories) == 1

    def curve(rows, x, y, label, title, x_title):
        lines = _series(rows, x, y)
        return curves_figure(
            {label: next(iter(lines.values()))} if single else lines,
            title=title,
            x_title=x_title,
            y_title=label,
            log_y=True,
            height=height,
            style=style,
        )

    return [
        curve(metrics, "step", "energy", "energy distance", "energy distance vs step", "step"),
        curve(metrics, "wall_s", "energy", "energy distance", "energy distance vs training time", "training time (s)"),
        curve(records, "step", "loss", "loss", "loss ‖V‖² vs step", "step"),
    ]


def add_noise_layer(figure: dict, noise: EstimatorNoise, arrow_scale: float) -> None:
    """The estimator-noise layer on a particle figure: at each probed particle, the V of each fresh
    batch (thin arrows) and a circle whose radius is the spread of V."""
    starts = np.repeat(noise.probes[None], noise.samples.shape[0], 0).reshape(-1, 2)
    figure["data"].append(
        arrow_trace(
            starts,
            noise.samples.reshape(-1, 2),
            arrow_scale,
            f"V from {noise.samples.shape[0]} fresh batches",
            palette.NOISE,
        )
    )
    tips = noise.probes + arrow_scale * noise.mean
    layout = figure.get("layout", {})
    x0, x1 = layout.get("xaxis", {}).get("range", [-1.5, 1.5])
    px_per_unit = 0.8 * float(layout.get("height", 480)) / max(float(x1 - x0), 1e-9)
    figure["data"].append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": tips[:, 0],
            "y": tips[:, 1],
            "name": "spread of V (circle radius)",
            "hoverinfo": "skip",
            "marker": {
                "symbol": "circle-open",
                "color": palette.NOISE.colour,
                "size": np.clip(2 * arrow_scale * noise.spread * px_per_unit, 4, 80),
            },
        }
    )


LIGHT_THEME = {"theme:text": "#31333F", "theme:grid": "rgba(49, 51, 63, 0.14)"}


def resolve_theme(figure, colours: dict[str, str] = LIGHT_THEME):
    """``figure`` (a dict) with the theme tokens (:data:`TEXT`, :data:`GRID`) replaced by ``colours``, for
    drawing without the app's in-place view: ``st.plotly_chart``, which cannot know the browser's theme,
    or ``go.Figure(resolve_theme(figure))`` in a notebook."""
    if isinstance(figure, str):
        return colours.get(figure, figure)
    if isinstance(figure, dict):
        return {key: resolve_theme(value, colours) for key, value in figure.items()}
    if isinstance(figure, (list, tuple)):
        return type(figure)(resolve_theme(value, colours) for value in figure)
    return figure


def flattening_figures(result: NeighboursByDimension, step: int, *, style: Style | None = None) -> tuple[dict, dict]:
    """The kernel-flattening chart's two panels against D, for raw and normalised distances, one and
    three temperatures: how many data points a particle's attraction averages over, as a share of all
    of them, and how much of its 2D neighbourhood it still sees."""
    share = {
        name: (result.dimensions, [n / result.positives for n in values]) for name, values in result.neighbours.items()
    }
    overlap = {name: (result.dimensions, values) for name, values in result.overlap.items()}
    common = {"x_title": "dimensions D", "style": style, "uirevision": "flattening"}
    return (
        curves_figure(share, title=f"neighbours ÷ data points (step {step})", y_title="share of the data", **common),
        curves_figure(overlap, title="overlap with the 2D neighbourhood", y_title="overlap", **common),
    )


def field_layers(snap: Snapshot, bounds, drift: DriftConfig, layers: set[str]) -> dict:
    """The extra inputs of :func:`particle_figure` for the grid layers in ``layers``: the field V on a
    21 × 21 grid over ``bounds`` ("field on a grid") and the particles' density ("density")."""
    extra: dict = {}
    if "field on a grid" in layers:
        grid = grid_points(bounds, 21)
        positives = torch.as_tensor(snap.positives)
        extra["grid_field"] = field_on_grid(grid, torch.as_tensor(snap.generated), positives, drift).numpy()
        extra["grid"] = grid.numpy()
    if "density" in layers:
        extra["density"] = density_on_grid(snap.generated, bounds, 60)
    return extra


NOISE_RESAMPLES = 8
NOISE_PROBES = 48


def noise_layer(trainer, figure: dict, arrow_scale: float, seed: int) -> EstimatorNoise | str:
    """Add the estimator-noise layer (:func:`add_noise_layer`) for ``NOISE_PROBES`` of ``trainer``'s
    particles and ``NOISE_RESAMPLES`` fresh batches; returns the noise, or why it cannot be computed."""
    try:
        noise = estimator_noise(trainer, resamples=NOISE_RESAMPLES, probes=NOISE_PROBES, seed=seed)
    except (ValueError, RuntimeError) as err:
        return f"Estimator noise unavailable: {err}"
    add_noise_layer(figure, noise, arrow_scale)
    return noise
