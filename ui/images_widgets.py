"""The images page's controls. Widget keys are not where settings live: each widget is bound
(:func:`ui.session.bound`) to the session's :class:`~drift_views.images.ImagesPage`, as the 2D settings
are to the session's config, so a setting survives a page switch. A config widget's key is its field's
name (``tau``, ``batch_size``...), the same vocabulary as the 2D pages, whose widgets of the same name
show the 2D config: each page gives those keys its own values on every run."""

from __future__ import annotations

from typing import Any

import streamlit as st

from drift_views.images import ImagesPage
from drift_views.setting_widgets import IMAGE_WIDGETS, SettingWidget, image_encoders
from ui.controls import config_widget
from ui.session import bound, lab, outcome, uploaded

FID_SIZES = (50, 250, 500, 1000, 2000, 5000)


def page_state() -> ImagesPage:
    """This session's :class:`~drift_views.images.ImagesPage` (its run is ``lab().runs["images"]``)."""
    return lab().page("images", ImagesPage)


def page_widget(key: str, attribute: str) -> dict[str, Any]:
    """Widget kwargs for a widget showing one of the page's own settings."""
    return bound(key, getattr(page_state(), attribute), lambda value: setattr(page_state(), attribute, value))


def setting(container, widget: SettingWidget) -> None:
    """An images setting's widget, bound to the page's config (:meth:`ImagesPage.set`). Its key is the
    field's name, as on the 2D pages: the pages never draw at the same time and each run gives the key
    its page's value."""
    name = widget.field
    config_widget(container, widget, page_state().config.to_flat()[name], lambda new: page_state().set(name, new))


def sidebar(page: ImagesPage) -> None:
    """The sidebar's data, model, drift and training controls (they change ``page.config``)."""
    if page.config.model.encoder not in image_encoders():
        page.config = page.config.with_values({"encoder": "random-conv"})
    sb = st.sidebar
    sb.markdown("#### :material/image: Data and model")
    for name in ("dataset", "generator", "encoder", "per_location", "separate_mean_std"):
        setting(sb, IMAGE_WIDGETS[name])
    sb.markdown("#### :material/tune: Drift and training")
    for name in ("K", "alpha", "tau", "batch_size", "lr", "steps"):
        setting(sb, IMAGE_WIDGETS[name])
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


def _take_checkpoint(data: bytes, name: str) -> None:
    """The page loads an uploaded checkpoint into the chosen arm."""
    run = lab().runs.get("images")
    if run is not None:
        page_state().take_checkpoint(run, data, name)


def checkpoint_uploader(column) -> None:
    """The uploader of a checkpoint for the chosen arm, and what the last upload did."""
    column.file_uploader("Load a checkpoint into this run", type=["pt"], **uploaded("img_ck_load", _take_checkpoint))
    outcome(column, page_state().checkpoint_note)
