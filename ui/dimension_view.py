"""The bridge from 2D toys to feature space: how the kernel's weights flatten as the data is embedded in
more dimensions (:func:`drift_core.probes.neighbours_by_dimension`), and what distance normalisation and
several temperatures do about it. Computed on request (it embeds the current particles in every D)."""

from __future__ import annotations

import streamlit as st

from drift_core.run import Run
from drift_views import figures
from drift_views.flattening import FlatteningChart
from drift_views.words import flattening_caption

from .live_plot import LiveView
from .session import lab


def _compute(page: str) -> None:
    run = lab().runs.get(page)
    if run is not None:
        lab().page(f"{page}:flattening", FlatteningChart).compute(run)


def kernel_flattening(page: str, run: Run) -> None:
    """An expander with the chart: effective neighbours (as a share of the data points) and overlap with
    the 2D neighbourhood, against D, for raw and normalised distances, one and three temperatures."""
    chart = lab().page(f"{page}:flattening", FlatteningChart)
    with st.expander("Dimensions: how the kernel flattens as D grows", icon=":material/3d_rotation:"):
        st.caption(flattening_caption(run.config.data.embedding_noise))
        st.button(
            "Compute for the current particles" if chart.result is None else "Compute again",
            key="flattening",
            on_click=_compute,
            args=(page,),
            help="embeds the particles in D = 2 … 64 and measures the kernel weights: takes a few seconds",
        )
        result = chart.result
        if result is None:
            return
        neighbours, overlap = figures.flattening_figures(result, chart.step, style=figures.Style.of(lab().view))
        left, right = st.columns(2)
        with left:
            LiveView("flattening_neighbours").draw(neighbours)
        with right:
            LiveView("flattening_overlap").draw(overlap)
