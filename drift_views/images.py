"""The images page without Streamlit: its own state (:class:`ImagesPage`: the settings, the FID rows),
and its feature-space picture: one feature group of an arm in the PCA plane of the real features
(:mod:`drift_core.images.projection`), as a Plotly dict for the app's live view: the real sample
(faint, as the 2D data), the generated display images (as the 2D particles) and their drift V (as the
2D arrows), in the palette of the 2D views. No mathematics beyond drawing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from drift_core import palette
from drift_core.checkpoint import CheckpointError
from drift_core.config import ConfigError
from drift_core.images.config import ImageExperimentConfig
from drift_core.images.fid import FIDWeightsUnavailable
from drift_core.images.pair import ArmFID, evaluate_arms, load_arm
from drift_core.images.projection import PlanarFeatureView
from drift_core.run import Run, view_bounds

from . import figures

NOISE_DIMS = {"tiny": 64, "base": 128}
"""The noise size the page gives each generator."""
DEFAULT_CONFIG = ImageExperimentConfig().with_values(
    {
        "dataset": "demo-digits",
        "generator": "tiny",
        "noise_dim": NOISE_DIMS["tiny"],
        "encoder": "random-conv",
        "K": 1,
        "alpha": 0.1,
        "tau": 0.05,
        "batch_size": 32,
        "positives": 32,
        "lr": 1e-3,
        "steps": 2000,
        "ema_decay": 0.95,
    }
)
"""The page's first settings: the offline digits and the tiny generator, which learn on a CPU in minutes;
a short EMA so the grids follow the training closely."""


@dataclass
class ImagesPage:
    """What the images page keeps besides its run: the settings of the sidebar (``config``: the pair's
    base config, its K is the lookahead arm's), steps per frame, the feature group of the 2D picture
    ("": the default, :func:`drift_core.images.pair.picture_group`), the FID size and results, and the checkpoint controls'
    choices."""

    config: ImageExperimentConfig = field(default_factory=lambda: DEFAULT_CONFIG)
    steps_per_frame: int = 1
    feature_group: str = ""
    fid_n: int = 250
    fid_rows: list[ArmFID] = field(default_factory=list)
    checkpoint_arm: str = "baseline"
    checkpoint_note: str = ""  # what the last upload did (after "error:" when it was refused)
    setting_error: str = ""
    fid_error: str = ""  # why the last FID/KID could not be computed

    def evaluate(self, run: Run, progress: Callable[[float, str], None] | None = None) -> None:
        """FID-n and KID of both arms at the page's ``fid_n`` (:func:`~drift_core.images.pair.evaluate_arms`),
        added to the page's rows; without Inception weights the rows stay and ``fid_error`` says why."""
        try:
            self.fid_rows.extend(evaluate_arms(run, self.fid_n, progress=progress))
            self.fid_error = ""
        except FIDWeightsUnavailable as err:
            self.fid_error = str(err)

    def set(self, name: str, value) -> None:
        """Set config field ``name`` (the generator also sets its noise size, the batch size the number
        of real images: generated = real); a value the engine refuses keeps the config and says why."""
        values = {name: value}
        if name == "generator":
            values["noise_dim"] = NOISE_DIMS[value]
        if name == "batch_size":
            values["positives"] = value
        try:
            self.config = self.config.with_values(values)
            self.setting_error = ""
        except ConfigError as err:
            self.setting_error = f"Setting not applied: {err}"

    def take_checkpoint(self, run: Run, data: bytes, name: str) -> None:
        """Load the uploaded checkpoint ``data`` (file ``name``) into the arm chosen in the checkpoint
        controls (:func:`drift_core.images.pair.load_arm`: the run pauses). Called once per upload:
        choosing the other arm afterwards, to save it, loads nothing into it. A refused file changes
        nothing and the note says why."""
        try:
            loaded = load_arm(run, self.checkpoint_arm, data)
        except CheckpointError as err:
            self.checkpoint_note = f"error:Not loaded: {err}"
        else:
            self.checkpoint_note = f"Loaded {name}: {loaded.config.drift.label()} at step {loaded.step_count}."


ARROW_SHARE = 0.08
"""The median drift arrow is drawn this share of the picture's width (V's true length, in feature
units, is several times the spread of the data: the loss's target lies far beyond the points)."""


def feature_bounds(views: Sequence[PlanarFeatureView]) -> tuple[float, float, float, float]:
    """One square box for the pictures of all arms: the real sample and every arm's generated points."""
    points = [views[0].real] + [v.generated for v in views]
    span = max(float(np.ptp(np.concatenate(points), axis=0).max()), 1e-9)
    return view_bounds(*points, min_span=1e-3 * span)


INSIDE_SHARE = 1.0
"""This share of the drawn arrows ends inside the picture (all: a cut arrow hides where it points)."""


def feature_arrow_scale(views: Sequence[PlanarFeatureView], bounds: Sequence[float]) -> float:
    """One drawing scale for the drift arrows of all arms (their lengths stay comparable): the median
    arrow :data:`ARROW_SHARE` of the width, shortened where needed so that at least
    :data:`INSIDE_SHARE` of the arrows end inside ``bounds`` (one arm's drift can be many times the
    other's, as a lookahead arm's is at step 0)."""
    starts = np.concatenate([v.generated for v in views]).astype(np.float64)
    drift = np.concatenate([v.drift for v in views]).astype(np.float64)
    scale = figures.visible_scale(drift, bounds, share=ARROW_SHARE)
    return min(scale, inside_scale(starts, drift, bounds, INSIDE_SHARE))


def inside_scale(starts: np.ndarray, vectors: np.ndarray, bounds: Sequence[float], share: float) -> float:
    """The largest scale s at which ``share`` of the arrows from ``starts`` [n, 2] along ``vectors``
    [n, 2], drawn s times their length, end inside ``bounds`` (x0, x1, y0, y1); inf if no arrow can
    leave. An arrow whose start is outside the box counts as leaving at any scale."""
    lows, highs = np.array([bounds[0], bounds[2]]), np.array([bounds[1], bounds[3]])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        room = np.where(
            vectors > 0, (highs - starts) / vectors, np.where(vectors < 0, (lows - starts) / vectors, np.inf)
        )
    reach = np.where(((starts >= lows) & (starts <= highs)).all(1), room.min(1), 0.0)
    if not len(reach):
        return float("inf")
    return float(np.quantile(reach, 1 - share, method="lower"))


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


def data_caption(images) -> str:
    """What the pair trains on (an :class:`~drift_core.images.data.ImageSet`): an offline demo set says
    why it is used."""
    if images.is_demo:
        return (
            f":material/science: **{images.description}.** CIFAR10 was not requested or is not here; this offline "
            "set needs no download."
        )
    return f"Data: {images.description}"


def arm_caption(trainer) -> str:
    """The numbers under an arm's grid: its last step's drift RMS, loss and speed on its device ("" before
    the first step)."""
    last = trainer.last_record
    if last is None:
        return ""
    return (
        f"drift RMS {last.drift_rms:.4f} · loss {last.loss:.2f} · {last.images_per_s:.0f} images/s on "
        f"{trainer.device.type}"
    )


def drift_rms_figure(run: Run, *, style: figures.Style = figures.Style()) -> dict:
    """Each arm's raw drift RMS (the base term, mean over the feature groups) against step, over its
    finite steps (log axis)."""
    series = {}
    for name, history in run.histories.items():
        steps = [r for r in history.records if not r.diverged]
        series[run.label(name)] = ([r.step for r in steps], [r.drift_rms for r in steps])
    return figures.curves_figure(
        series,
        title="Raw drift RMS (base term, mean over feature groups)",
        x_title="step",
        y_title="raw drift RMS",
        log_y=True,
        style=style,
    )


def fid_table(rows: Sequence[ArmFID]) -> list[dict]:
    """The FID/KID results as table rows, one per evaluation."""
    return [
        {
            "run": r.arm,
            "step": r.step,
            "FID": round(r.fid, 2),
            "KID": f"{r.kid:.4f} ± {r.kid_std:.4f}",
            "metric": r.label,
            "seconds": round(r.seconds, 1),
        }
        for r in rows
    ]
