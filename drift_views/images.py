"""The images page's feature-space picture: one feature group of an arm in the PCA plane of the real
features (:mod:`drift_core.images.projection`), as a Plotly dict for the app's live view:
the real sample (faint, as the 2D data), the generated display images (as the 2D particles) and their
drift V (as the 2D arrows), in the palette of the 2D views. No mathematics beyond drawing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from drift_core import palette
from drift_core.images.projection import PlanarFeatureView
from drift_core.run import Run, view_bounds

from . import figures

ARROW_SHARE = 0.08
"""The median drift arrow is drawn this share of the picture's width (V's true length, in feature
units, is several times the spread of the data: the loss's target lies far beyond the points)."""


def feature_bounds(views: Sequence[PlanarFeatureView]) -> tuple[float, float, float, float]:
    """One square box for the pictures of all arms: the real sample and every arm's generated points."""
    points = [views[0].real] + [v.generated for v in views]
    span = max(float(np.ptp(np.concatenate(points), axis=0).max()), 1e-9)
    return view_bounds(*points, min_span=1e-3 * span)


def feature_arrow_scale(views: Sequence[PlanarFeatureView], bounds: Sequence[float]) -> float:
    """One drawing scale for the drift arrows of all arms (their lengths stay comparable)."""
    return figures.visible_scale(np.concatenate([v.drift for v in views]), bounds, share=ARROW_SHARE)


def feature_space_figure(
    view: PlanarFeatureView,
    *,
    bounds: Sequence[float],
    arrow_scale: float,
    title: str = "",
    height: int = 270,
    uirevision: str = "features",
    style: figures.Style = figures.Style(),
) -> dict:
    """Real features (grey), generated features (blue) and their drift V (text colour, drawn
    ``arrow_scale`` times its length) of ``view``, on axes PC1 and PC2 of the real features. No legend
    (the picture is small; the page's caption names the colours): the x axis says the arrows' scale."""
    traces = [
        figures.scatter_trace(view.real, "real", palette.DATA.colour, style.size(4), opacity=0.6),
        figures.arrow_trace(view.generated, view.drift, arrow_scale, f"V ×{arrow_scale:.2g}", figures.V, style),
        figures.scatter_trace(view.generated, "generated", palette.GENERATED.colour, style.size(5)),
    ]
    layout = figures.base_layout(bounds, title=title, height=height, uirevision=uirevision, style=style)
    titles = (f"PC1 ({view.explained[0]:.0%}) · V drawn ×{arrow_scale:.2g}", f"PC2 ({view.explained[1]:.0%})")
    for axis, text in zip(("xaxis", "yaxis"), titles):
        layout[axis]["title"] = {"text": text, "font": {"size": style.text - 1}, "standoff": 2}
    layout["margin"] = {"l": 10 + 2 * style.text, "r": 4, "t": layout["margin"]["t"], "b": 10 + 2 * style.text}
    layout["showlegend"] = False
    return {"data": traces, "layout": layout}


def feature_space_figures(
    pictures: Mapping[str, PlanarFeatureView], *, uirevision: str = "features", style: figures.Style = figures.Style()
) -> dict[str, dict]:
    """{arm: :func:`feature_space_figure`} for the arms' pictures on one box and one arrow scale."""
    views = list(pictures.values())
    bounds = feature_bounds(views)
    scale = feature_arrow_scale(views, bounds)
    return {
        arm: feature_space_figure(view, bounds=bounds, arrow_scale=scale, uirevision=uirevision, style=style)
        for arm, view in pictures.items()
    }


def drift_rms_rows(run: Run) -> list[dict]:
    """Long-form rows {step, drift_rms, series} of every arm's finite steps, for the curves."""
    return [
        {"step": r.step, "drift_rms": r.drift_rms, "series": run.label(name)}
        for name, history in run.histories.items()
        for r in history.records
        if not r.diverged
    ]
