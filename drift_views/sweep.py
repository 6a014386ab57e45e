"""The Sweep page without Streamlit: its state (:class:`SweepPage`: the grid being chosen, the job, the
result), the heatmap of one metric (mean over the seeds, "mean ± std" per cell, a colour range no
narrower than the seed noise), per-cell thumbnails, what every cell shares, and the grid a page's
choices describe."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from drift_core.config import ConfigError, ExperimentConfig
from drift_core.data.toy2d import MIXTURE_SIGMA, mixture_modes
from drift_core.limits import Limits
from drift_core.sweep import AXES, METRICS, SweepJob, SweepResult, SweepSpec
from drift_core.sweep_pictures import cell_thumbnail, heatmap_for

from .display import BATCH_OPTIONS, LR_OPTIONS, TAU_OPTIONS, batch_options

AXIS_OPTIONS = {"K": tuple(range(0, 9)), "tau": TAU_OPTIONS, "batch_size": BATCH_OPTIONS, "lr": LR_OPTIONS}
"""The values the page offers along each axis (within the server's limits: :func:`axis_options`)."""
DEFAULT_VALUES = {"K": (0, 1, 2), "tau": (0.02, 0.05, 0.2), "batch_size": (32, 128, 512), "lr": (1e-3, 5e-3, 2e-2)}


@dataclass
class SweepPage:
    """The Sweep page's state in one browser session: the grid being chosen (the values chosen for
    every axis are kept when the axes change), the metric shown, the selected cell, the running job
    and the last result."""

    dataset: str = "8gaussians"
    x_axis: str = "K"
    y_axis: str = "tau"
    values: dict[str, tuple] = field(default_factory=lambda: dict(DEFAULT_VALUES))
    steps: int = 200
    seeds: int = 1  # seeds per cell: the base seed and the ones after it
    metric: str = "energy"
    selected: tuple[int, int] | None = None  # (row, col) of the result's selected cell
    open_requested: bool = False  # "Open in Playground" was pressed (the page switch happens in the body)
    job: SweepJob | None = None
    result: SweepResult | None = None

    def set_axis(self, slot: str, axis: str) -> None:
        """Choose ``slot``'s ("x" or "y") axis; choosing the other slot's axis swaps the two."""
        other = "y" if slot == "x" else "x"
        if axis == getattr(self, f"{other}_axis"):
            setattr(self, f"{other}_axis", getattr(self, f"{slot}_axis"))
        setattr(self, f"{slot}_axis", axis)

    def set_values(self, axis: str, values) -> None:
        self.values[axis] = tuple(sorted(values))

    def chosen(self, axis: str, options) -> list:
        """The values chosen for ``axis`` that ``options`` offers."""
        return [v for v in self.values.get(axis, DEFAULT_VALUES[axis]) if v in options]

    def start(self, spec: SweepSpec, *, here: bool = False) -> None:
        """Start a sweep of ``spec`` in a worker process (``here``: in this thread), cancelling a running one."""
        if self.job is not None and not self.job.done:
            self.job.cancel()
        self.job, self.selected = SweepJob(spec), None
        if here:
            self.job.run_here()
        else:
            self.job.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def take_selection(self, event) -> None:
        """A click on the heatmap (the chart's selection event, any shape): the clicked cell becomes the
        selected one; anything else changes nothing."""
        if self.result is not None and (picked := selected_cell(event, self.result)) is not None:
            self.selected = picked

    def request_open(self) -> None:
        """ "Open in Playground" was pressed (the page switch happens in the page body)."""
        self.open_requested = True

    def take_open_request(self) -> ExperimentConfig | None:
        """The selected cell's settings (first seed) once "Open in Playground" was pressed, then the
        request is forgotten; None when nothing was asked or there is no selected cell."""
        asked, self.open_requested = self.open_requested, False
        if asked and self.result is not None and self.selected is not None:
            return self.result.spec.trial_config(*self.selected)
        return None

    def take_finished(self) -> bool:
        """Make a finished job's result the page's result; True if there was a new one."""
        job = self.job
        if job is not None and job.result is not None and self.result is not job.result:
            self.result = job.result
            return True
        return False


def axis_options(axis: str, limits: Limits) -> list:
    """The values offered along ``axis`` that the server's limits allow."""
    options = list(AXIS_OPTIONS[axis])
    if axis == "K":
        options = [k for k in options if k <= limits.max_k]
    if axis == "batch_size":
        options = batch_options(limits)
    return options


def axis_label(axis: str) -> str:
    return AXES[axis]


def seeds_for(base: ExperimentConfig, count: int) -> tuple[int, ...]:
    """The page's seeds: the session's seed and the ``count - 1`` seeds after it."""
    return tuple(range(base.train.seed, base.train.seed + max(1, int(count))))


def fixed_settings(base: ExperimentConfig, x_axis: str, y_axis: str, seeds: tuple[int, ...]) -> str:
    """What every cell shares (the settings that are not swept) and its seeds, in one sentence."""
    swept = {x_axis, y_axis}
    parts = [f"network {base.model.width}×{base.model.depth}"]
    if "batch_size" not in swept:
        parts.append(f"N = {base.train.batch_size}")
    if "tau" not in swept:
        parts.append(f"τ = {base.drift.tau:g}")
    if "lr" not in swept:
        parts.append(f"lr = {base.train.lr:g}")
    if "K" not in swept:
        parts.append(base.drift.label())
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(str(s) for s in seeds)}"
    return f"Every cell uses your current settings for what is not swept: {', '.join(parts)}; {seed_text}."


def build_spec(
    base: ExperimentConfig,
    dataset: str,
    x_axis: str,
    x_values: list,
    y_axis: str,
    y_values: list,
    steps: int,
    seeds: tuple[int, ...] = (),
) -> tuple[SweepSpec | None, str]:
    """The spec, or None with the reason (shown to the user; nothing is lost)."""
    if not x_values or not y_values:
        return None, "Pick at least one value on each axis."
    try:
        base = base.with_values({"dataset": dataset}) if base.data.dataset != dataset else base
        return SweepSpec(base, x_axis, tuple(x_values), y_axis, tuple(y_values), steps=int(steps), seeds=seeds), ""
    except ConfigError as err:
        return None, str(err)


def grid_size(spec: SweepSpec) -> str:
    """How much training a sweep of ``spec`` is, e.g. "3 × 2 = 6 cells × 2 seeds × 300 steps = 3,600
    training steps"."""
    cells, seeds = spec.shape[0] * spec.shape[1], len(spec.seeds)
    per_seed = f" × {seeds} seeds" if seeds > 1 else ""
    return (
        f"{spec.shape[0]} × {spec.shape[1]} = {cells} cell{'s' if cells != 1 else ''}{per_seed} × {spec.steps} steps "
        f"= {cells * seeds * spec.steps:,} training steps"
    )


def cancelled_note(result: SweepResult) -> str:
    """What a cancelled sweep kept."""
    return (
        f"Cancelled: {len(result.trials)} of {len(result.spec.trials())} runs finished (they are cached; run "
        "again to finish the rest)."
    )


def sweep_base_config(config: ExperimentConfig) -> ExperimentConfig:
    """The session's configuration (network, seed, unswept settings), or the defaults when it uses
    uploaded points (sweeps run on the built-in datasets)."""
    return ExperimentConfig() if config.data.dataset == "custom" else config


def colour_range(mean: np.ndarray, std: np.ndarray) -> tuple[float, float] | None:
    """The heatmap's colour range: the means' range, widened to at least ± 2 × the typical spread
    (root mean square of the cells' std) around its middle, so cells that differ by less than seed
    noise get nearly the same colour. Without a spread (one seed) the means' range. None when no cell
    has a value."""
    finite = mean[np.isfinite(mean)]
    if not finite.size:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    spreads = std[np.isfinite(std)]
    if spreads.size:
        noise = float(np.sqrt(np.mean(spreads**2)))
        middle, half = (lo + hi) / 2, max((hi - lo) / 2, 2 * noise)
        lo, hi = middle - half, middle + half
    return lo, hi


def cell_text(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3g} ± {std:.2g}" if np.isfinite(std) else f"{mean:.3g}"


def heatmap_figure(result: SweepResult, metric: str, *, height: int = 420) -> dict:
    """A Plotly heatmap of one metric's mean over the seeds (rows: y values, columns: x values; best =
    bright) with "mean ± std" in each cell, colours over :func:`colour_range`, every seed's value on
    hover, and an invisible marker per cell so a click selects that cell."""
    spec = result.spec
    mean, std, values = result.mean(metric), result.std(metric), result.values(metric)
    name, lower = METRICS[metric]
    xs = [f"{v:g}" for v in spec.x_values]
    ys = [f"{v:g}" for v in spec.y_values]
    bounds = colour_range(mean, std)
    log = bounds is not None and bounds[0] > 0 and bounds[1] / bounds[0] > 10
    shade = np.where(np.isfinite(mean), np.log10(np.where(mean > 0, mean, 1)) if log else mean, np.nan)
    heat = {
        "type": "heatmap",
        "z": shade.tolist(),
        "x": xs,
        "y": ys,
        "hoverinfo": "skip",
        "text": [[cell_text(mean[i, j], std[i, j]) for j in range(len(xs))] for i in range(len(ys))],
        "texttemplate": "%{text}",
        "colorscale": "Viridis",
        "reversescale": lower,
        "colorbar": {"title": {"text": ("log₁₀ " if log else "") + name}},
    }
    if bounds is not None:
        lo, hi = (np.log10(bounds[0]), np.log10(bounds[1])) if log else bounds
        heat.update(zmin=float(lo), zmax=float(hi) if hi > lo else float(lo) + 1e-12, zauto=False)
    seeds = spec.seeds

    def hover(i: int, j: int) -> str:
        per_seed = [
            f"seed {seeds[s]}: {values[i, j, s]:.4g}" for s in range(len(seeds)) if np.isfinite(values[i, j, s])
        ]
        return f"{spec.cell_label(i, j)}<br>{'<br>'.join(per_seed) or 'not run'}<br>click to select"

    return {
        "data": [
            heat,
            {
                "type": "scatter",
                "mode": "markers",
                "x": [x for _ in ys for x in xs],
                "y": [y for y in ys for _ in xs],
                "name": "cells",
                # square markers almost as tall as a cell (plotly selects points on click, not heatmap cells)
                "marker": {
                    "size": max(12, int(0.9 * (height - 90) / len(ys))),
                    "symbol": "square",
                    "opacity": 0,
                    "color": "black",
                },
                "customdata": [[i, j] for i in range(len(ys)) for j in range(len(xs))],
                "text": [hover(i, j) for i in range(len(ys)) for j in range(len(xs))],
                "hovertemplate": "%{text}<extra></extra>",
                "showlegend": False,
            },
        ],
        "layout": {
            "height": height,
            "margin": {"l": 60, "r": 10, "t": 40, "b": 50},
            "title": {
                "text": f"{name} after {spec.steps} steps, "
                f"{'mean of ' + str(len(seeds)) + ' seeds' if len(seeds) > 1 else 'one seed'} "
                f"({'lower' if lower else 'higher'} is better)",
                "font": {"size": 14},
                "x": 0.02,
            },
            # fixed ranges: the big click markers must not pad the axes (row 0 at the top, like the thumbnails)
            "xaxis": {
                "title": {"text": axis_label(spec.x_axis)},
                "type": "category",
                "range": [-0.5, len(xs) - 0.5],
                "autorange": False,
            },
            "yaxis": {
                "title": {"text": axis_label(spec.y_axis)},
                "type": "category",
                "range": [len(ys) - 0.5, -0.5],
                "autorange": False,
            },
            "clickmode": "event+select",
            "dragmode": False,
        },
    }


def colour_note(result: SweepResult) -> str:
    if len(result.spec.seeds) > 1:
        return (
            "Each cell: mean ± std over the seeds. Colours span at least ± 2 × the typical spread, so "
            "cells that differ by less than seed noise look alike; hover a cell for every seed's value."
        )
    return (
        "One seed per cell: the colours stretch over whatever range that seed gave, so seed noise can look "
        "like a pattern. Set *Seeds per cell* to 3 or more to see the spread."
    )


def selected_cell(event, result: SweepResult) -> tuple[int, int] | None:
    """The (row, col) clicked in the heatmap (a ``st.plotly_chart(..., on_select=...)`` selection)."""
    try:
        points = event.selection.points if hasattr(event, "selection") else event["selection"]["points"]
    except (KeyError, TypeError, AttributeError):
        return None
    for point in points or []:
        data = point.get("customdata")
        if data is not None and len(data) == 2:
            i, j = int(data[0]), int(data[1])
            if 0 <= i < result.spec.shape[0] and 0 <= j < result.spec.shape[1]:
                return i, j
    return None


def seed_values(result: SweepResult, i: int, j: int, metric: str) -> str:
    """ "seed 0: 0.0123 · seed 1: 0.0131" for cell (i, j)."""
    values, seeds = result.values(metric), result.spec.seeds
    return (
        " · ".join(f"seed {seeds[s]}: {values[i, j, s]:.4g}" for s in range(len(seeds)) if np.isfinite(values[i, j, s]))
        or "no finished seed"
    )


def empty_note(presenter: bool) -> str:
    """What to do when there is no sweep to show yet (presenter mode hides the sidebar with the grid)."""
    if presenter:
        return (
            "No sweep to show yet. Presenter mode hides the sidebar, where the grid is chosen: press **Exit "
            "presenter mode** above, choose the axes and values, run the sweep, then present it."
        )
    return "Choose the axes and values in the sidebar, then press **Run sweep**."


def metric_note(result: SweepResult, metric: str) -> str:
    """Why ``metric`` says nothing on this sweep's dataset ("" when it applies): mode coverage needs a
    dataset with discrete modes."""
    if metric != "modes" or mixture_modes(result.spec.base.data.dataset) is not None:
        return ""
    return f"Mode coverage is defined for the mixture datasets ({', '.join(MIXTURE_SIGMA)}) only."


def verdict(result: SweepResult, metric: str) -> tuple[str, bool]:
    """The verdict on the best cell (:meth:`SweepResult.verdict`, "" without one), and whether the seeds
    separate it from every other cell (several seeds, no other cell's mean ± std overlapping it)."""
    text = result.verdict(metric)
    separated = bool(text) and len(result.spec.seeds) > 1 and not result.not_separated_from_best(metric)
    return text, separated


def thumbnail_caption(result: SweepResult, i: int, j: int, metric: str) -> str:
    """The words under cell (i, j)'s thumbnail: its settings, the metric's mean ± std over the seeds and
    how many of its runs diverged; or that it was not run (a cancelled sweep)."""
    label = result.spec.cell_label(i, j)
    trials = result.cell_trials(i, j)
    if not trials:
        return f"{label}: not run"
    diverged = sum(trial.diverged for trial in trials)
    mean, std = result.mean(metric)[i, j], result.std(metric)[i, j]
    return f"{label} · {METRICS[metric][0]}: {cell_text(mean, std)}" + (f" · diverged ({diverged})" if diverged else "")


def thumbnail_png(result: SweepResult, i: int, j: int, size: int = 180) -> bytes | None:
    """Cell (i, j)'s final particles over the data as PNG, without a label (the page writes it below)."""
    image = cell_thumbnail(result, i, j, size=size, label=False)
    if image is None:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def heatmap_png(result: SweepResult, metric: str) -> bytes:
    buffer = io.BytesIO()
    heatmap_for(result, metric).save(buffer, format="PNG")
    return buffer.getvalue()
