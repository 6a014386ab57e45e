"""The images page's controls. Widget keys are not where settings live: each widget is bound
(:func:`ui.session.bound`) to the session's :class:`~drift_views.images.ImagesPage`, as the 2D settings
are to the session's config, so a setting survives a page switch. A config widget's key is its field's
name (``tau``, ``batch_size``...), the same vocabulary as the 2D pages, whose widgets of the same name
show the 2D config: each page gives those keys its own values on every run."""

from __future__ import annotations

from typing import Any

import streamlit as st

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.data import DATASET_LABELS, DATASETS
from drift_core.images.features import resnet18_weights_path
from drift_core.limits import Limits
from drift_views.images import NOISE_DIMS, ImagesPage
from ui.session import bound, lab

TAUS = (0.02, 0.03, 0.05, 0.1, 0.2)
BATCHES = (8, 16, 32, 64, 128, 256)
LRS = (2e-4, 5e-4, 1e-3, 2e-3)
FID_SIZES = (50, 250, 500, 1000, 2000, 5000)
ENCODER_LABELS = {
    "pixels": "pixels (no encoder)",
    "random-conv": "random conv net (offline)",
    "resnet18": "ResNet-18 ImageNet (if cached)",
}
ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _config_widget(name: str, page: ImagesPage, help: str | None = None) -> dict[str, Any]:
    """Widget kwargs for the widget of config field ``name``, bound to the page's config
    (:func:`ui.session.bound`), with the field's meaning (or ``help``) as its tooltip. Its key is the
    field's name, as on the 2D pages: the pages never draw at the same time and each run gives the key
    its page's value."""
    meaning = help or ImageExperimentConfig.meanings()[name]
    return {"help": meaning, **bound(name, page.config.to_flat()[name], lambda value: page_state().set(name, value))}


def page_state() -> ImagesPage:
    """This session's :class:`~drift_views.images.ImagesPage` (its run is ``lab().runs["images"]``)."""
    return lab().page("images", ImagesPage)


def page_widget(key: str, attribute: str) -> dict[str, Any]:
    """Widget kwargs for a widget showing one of the page's own settings."""
    return bound(key, getattr(page_state(), attribute), lambda value: setattr(page_state(), attribute, value))


def sidebar(page: ImagesPage) -> None:
    """The sidebar's data, model, drift and training controls (they change ``page.config``)."""
    encoders = ["pixels", "random-conv"] + (["resnet18"] if resnet18_weights_path().is_file() else [])
    if page.config.model.encoder not in encoders:
        page.config = page.config.with_values({"encoder": "random-conv"})
    sb = st.sidebar
    sb.markdown("#### :material/image: Data and model")
    sb.selectbox(
        "Image set",
        DATASETS,
        format_func=lambda n: DATASET_LABELS[n].split(" - ")[0],
        **_config_widget("dataset", page),
    )
    sb.selectbox("Generator", tuple(NOISE_DIMS), **_config_widget("generator", page))
    sb.selectbox("Drift space", encoders, format_func=ENCODER_LABELS.get, **_config_widget("encoder", page))
    sb.toggle("Drift per location", **_config_widget("per_location", page))
    sb.toggle("Mean and std as two groups", **_config_widget("separate_mean_std", page))
    sb.markdown("#### :material/tune: Drift and training")
    sb.slider("Lookahead terms K", 0, min(4, Limits.from_env().max_k), **_config_widget("K", page))
    sb.select_slider(
        "Lookahead step α",
        ALPHAS,
        **_config_widget(
            "alpha",
            page,
            "z¹ = z⁰ + α V₀ between lookahead terms. In normalised feature space the terms are O(1) per "
            "coordinate, so α = 1 overshoots (benchmarks/RESULTS.md); 0.1 is the images' default",
        ),
    )
    sb.select_slider(
        "Temperature τ",
        TAUS,
        **_config_widget(
            "tau", page, "used as τ × {0.4, 1, 4}, each RMS-normalised (the paper's {0.02, 0.05, 0.2} at 0.05)"
        ),
    )
    sb.select_slider("Batch (generated = real)", BATCHES, **_config_widget("batch_size", page))
    sb.select_slider("Learning rate", LRS, **_config_widget("lr", page))
    sb.number_input("Step budget", 1, 1_000_000, **_config_widget("steps", page))
    sb.slider(
        "Steps per frame",
        1,
        10,
        **page_widget("steps_per_frame", "steps_per_frame"),
        help="training steps of each run between redraws",
    )
    if page.setting_error:
        sb.warning(page.setting_error)


def feature_group_selector(groups: tuple[str, ...], current: str) -> str:
    """The feature group of the 2D picture (the page's ``feature_group``, shown as ``current`` when that
    is not one of the run's ``groups``); returns the group to draw."""
    page_state().feature_group = current
    st.selectbox(
        "Feature group (2D picture)",
        groups,
        help="the picture beside each sample grid: this group's features of the real sample (grey), of the "
        "grid's images (blue) and their drift V (lines), on the two main axes (PCA) of the real features",
        **page_widget("img_group", "feature_group"),
    )
    return page_state().feature_group


def _take_checkpoint() -> None:
    """on_change of the checkpoint uploader: the page loads it into the chosen arm, once."""
    file, run = st.session_state.get("img_ck_load"), lab().runs.get("images")
    if file is not None and run is not None:
        page_state().take_checkpoint(run, file.getvalue(), file.name)


def checkpoint_uploader(column) -> None:
    """The uploader of a checkpoint for the chosen arm, and what the last upload did."""
    column.file_uploader("Load a checkpoint into this run", type=["pt"], key="img_ck_load", on_change=_take_checkpoint)
    note = page_state().checkpoint_note
    if note.startswith("error:"):
        column.error(note.removeprefix("error:"))
    elif note:
        column.success(note)
