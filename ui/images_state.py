"""The images page's state, kept in the session (:func:`ui.session.lab`): its run, the lock-step
baseline/lookahead pair (:func:`drift_core.images.pair.image_pair`, a :class:`~drift_core.run.Run`), in
``lab().runs["images"]``, and its own settings and FID rows in ``lab().page("images", ImagesPage)``.
No widgets here (:mod:`ui.images_widgets`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.pair import ArmFID, image_pair
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
    ("": the default, :func:`drift_core.images.pair.picture_group`), the FID size and results, and the checkpoint controls'
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
