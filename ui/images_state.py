"""The images page's state in the session (:func:`ui.session.lab`): its run, the lock-step
baseline/lookahead pair (:func:`drift_core.images.pair.image_pair`, a :class:`~drift_core.run.Run`), in
``lab().runs["images"]``, and its own settings and FID rows in ``lab().page("images", ImagesPage)``
(:class:`drift_views.images.ImagesPage`). No widgets here (:mod:`ui.images_widgets`)."""

from __future__ import annotations

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.pair import image_pair
from drift_core.run import Run
from drift_views.images import ImagesPage
from ui.session import lab

PAGE = "images"
"""The page's name in the session (its run and its own state)."""


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
