"""The images page's state, kept in the session (:func:`ui.session.lab`): its run, the lock-step
baseline/lookahead pair (:func:`drift_core.images.pair.image_pair`, a :class:`~drift_core.run.Run`), in
``lab().runs["images"]``, and its own settings and FID rows in ``lab().page("images", ImagesPage)``.
No widgets here (:mod:`ui.images_widgets`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.pair import ArmFID, image_pair
from drift_core.images.projection import PlanarFeatureView
from drift_core.images.train import ImageSnapshot
from drift_core.run import Run
from ui.session import lab

PAGE = "images"
"""The page's name in the session (its run and its own state)."""
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
    ("": the default, :func:`picture_group`), the FID size and results, and the checkpoint controls'
    choices."""

    config: ImageExperimentConfig = field(default_factory=lambda: DEFAULT_CONFIG)
    steps_per_frame: int = 1
    feature_group: str = ""
    fid_n: int = 250
    fid_rows: list[ArmFID] = field(default_factory=list)
    checkpoint_arm: str = "baseline"
    loaded_upload: tuple[str, str] | None = (
        None  # (file id, arm) of the upload loaded last, so a rerun does not load it again
    )
    setting_error: str = ""


def page_state() -> ImagesPage:
    """This session's :class:`ImagesPage`."""
    return lab().page(PAGE, ImagesPage)


def current_run() -> Run | None:
    """This session's image pair, if one was built."""
    return lab().runs.get(PAGE)


def pair_for(config: ImageExperimentConfig, *, reset: bool = False) -> tuple[Run, str]:
    """The session's pair for ``config`` and a note: a new pair (both arms from step 0) on Reset, on the
    first visit or when a setting that needs one changed; otherwise the same pair with the live
    settings (the step budget) applied. Raises what :func:`image_pair` raises (the old pair stays)."""
    run = current_run()
    if run is not None and not reset and not run.needs_reset(config):
        if config != run.base_config:
            run.apply(config)
        return run, ""
    note = "" if run is None else ("restarted" if reset else "settings changed: both runs restarted from step 0")
    lab().runs[PAGE] = image_pair(config)
    return lab().runs[PAGE], note


def drift_rms_rows(run: Run) -> list[dict]:
    """Long-form rows {step, drift_rms, series} of every arm's finite steps, for the curves."""
    return [
        {"step": r.step, "drift_rms": r.drift_rms, "series": run.label(name)}
        for name, history in run.histories.items()
        for r in history.records
        if not r.diverged
    ]


def picture_group(run: Run, wanted: str) -> str:
    """The feature group the 2D picture shows: ``wanted`` when the run's encoder has it, else the
    encoder's first group after the raw pixels (the pixels when they are the only one)."""
    groups = run.trainer.feature_groups
    if wanted in groups:
        return wanted
    return next((g for g in groups if g != "pixels"), groups[0])


def feature_pictures(run: Run, group: str, snapshots: Mapping[str, ImageSnapshot]) -> dict[str, PlanarFeatureView]:
    """{arm: feature group ``group`` of the arm's display images (those of its snapshot in ``snapshots``,
    as :meth:`Run.frames` gives them), the real sample and the drift V, on the PCA plane of the real
    sample} (one plane for all arms: the first arm's, fitted once per run)."""
    with run.lock:
        projection = run.trainer.feature_projection(group)
        return {
            name: trainer.feature_view(group, images=snapshots[name].images).planar(projection)
            for name, trainer in run.trainers.items()
        }
