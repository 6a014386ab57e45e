"""Streamlit helpers of the Sweep page: its state, the grid controls, the background job (progress,
cancel), picking a cell and "open this cell in the Playground". The heatmap, the thumbnails and the
words are :mod:`drift_views.sweep`.

The sweep itself (training, metrics, seeds, cache) is :mod:`drift_core.sweep`; its trials run in a
worker process (:class:`drift_core.sweep.SweepJob`), and a ``run_every`` fragment polls its progress,
which reads a few shared numbers: the server's script runs never compete with the training.

Everything the page keeps between script runs lives in one :class:`drift_views.sweep.SweepPage` object
in the session (``lab().page("sweep", ...)``). Widget keys are bound to it (:func:`ui.session.bound`), so a page
switch or a rerun loses nothing.
"""

from __future__ import annotations

import os

import streamlit as st

from drift_core.config import ExperimentConfig
from drift_core.data.toy2d import SAMPLERS
from drift_core.sweep import AXES, SweepResult, SweepSpec, prepare_workers
from drift_views.sweep import SweepPage, axis_label, axis_options, build_spec, fixed_settings, seeds_for

from .controls import limits
from .session import bound, lab

POLL_S = 0.5

MAX_PAGE_SEEDS = 8
"""Seeds per cell the page offers (the CLI allows more)."""


def page_state(base: ExperimentConfig) -> SweepPage:
    """This session's :class:`SweepPage`, created with the session's dataset on first use."""
    return lab().page(
        "sweep", lambda: SweepPage(dataset=base.data.dataset if base.data.dataset in SAMPLERS else "8gaussians")
    )


def axis_picker(state: SweepPage, slot: str) -> tuple[str, list]:
    """The ``slot`` ("x" or "y") axis selectbox and a multiselect of its values (keys ``sw_{slot}_axis``,
    ``sw_{slot}_values``)."""
    sb = st.sidebar
    choices = list(AXES) if slot == "x" else [a for a in AXES if a != state.x_axis]
    axis = getattr(state, f"{slot}_axis")
    sb.selectbox(
        f"{slot.upper()} axis ({'columns' if slot == 'x' else 'rows'})",
        choices,
        format_func=axis_label,
        **bound(f"sw_{slot}_axis", axis, lambda a: state.set_axis(slot, a)),
    )
    axis = getattr(state, f"{slot}_axis")
    options = axis_options(axis, limits())
    chosen = state.chosen(axis, options)
    values = sb.multiselect(
        f"{axis_label(axis)} values",
        options,
        format_func=lambda v: f"{v:g}",
        **bound(f"sw_{slot}_values", chosen, lambda v: state.set_values(axis, v)),
    )
    return axis, sorted(values)


def grid_controls(state: SweepPage, base: ExperimentConfig) -> tuple[SweepSpec | None, str]:
    """The sidebar's grid controls; the spec they describe, or None with the reason (shown to the
    user; nothing is lost). The dataset's and the steps' keys are the 2D fields' names, as on every
    page; each page gives them its own values."""
    sb = st.sidebar
    sb.markdown("#### :material/grid_on: Grid")
    datasets = list(SAMPLERS)
    sb.selectbox(
        "Dataset",
        datasets,
        **bound(
            "dataset",
            state.dataset if state.dataset in datasets else datasets[0],
            lambda v: setattr(state, "dataset", v),
        ),
    )
    x_axis, x_values = axis_picker(state, "x")
    y_axis, y_values = axis_picker(state, "y")
    sb.number_input(
        "Training steps per cell",
        min_value=1,
        max_value=5000,
        step=50,
        **bound("steps", state.steps, lambda v: setattr(state, "steps", int(v))),
    )
    sb.number_input(
        "Seeds per cell",
        min_value=1,
        max_value=MAX_PAGE_SEEDS,
        step=1,
        help="train every cell with this many seeds and show the mean and the spread (std), so "
        "a difference can be told from seed noise",
        **bound("sw_seeds", state.seeds, lambda v: setattr(state, "seeds", int(v))),
    )
    seeds = seeds_for(base, state.seeds)
    sb.caption(fixed_settings(base, x_axis, y_axis, seeds))
    return build_spec(base, state.dataset, x_axis, x_values, y_axis, y_values, state.steps, seeds)


def sweep_here() -> bool:
    """Whether sweeps run in the server's thread instead of a worker process (``DRIFT_SWEEP_SYNC=1``)."""
    return os.environ.get("DRIFT_SWEEP_SYNC") == "1"


def prepare() -> None:
    """Get the sweep worker's process server going (it imports torch in the background while the user
    picks the grid), so pressing Run does not wait for that. Cheap after the first call."""
    if not sweep_here():
        try:
            prepare_workers()
        except OSError:
            pass  # the job reports it if worker processes cannot start


# ---- the result ------------------------------------------------------------------------------------


def cell_picker(state: SweepPage, result: SweepResult) -> tuple[int, int]:
    """One selectbox of every cell (key ``sw_cell``), seeded with the selected cell (the best one
    until the user picks another); returns the selected cell."""
    cells = result.spec.cells()
    if state.selected not in cells:
        state.selected = result.best_cell(state.metric) or cells[0]
    st.selectbox(
        "Cell",
        range(len(cells)),
        format_func=lambda n: result.spec.cell_label(*cells[n]),
        **bound("sw_cell", cells.index(state.selected), lambda n: setattr(state, "selected", cells[n])),
    )
    return state.selected


def open_in_playground(config: ExperimentConfig) -> None:
    """The session takes ``config`` (:meth:`LabSession.open_in_playground`) and the browser goes to the
    Playground with it in the URL. Stops the script (st.switch_page)."""
    lab().open_in_playground(config)
    st.switch_page("pages/playground.py", query_params=config.to_query())
