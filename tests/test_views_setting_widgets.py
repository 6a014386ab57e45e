"""The setting widgets' offers (drift_views.setting_widgets): every widget shows the session's value,
whatever a link or a checkpoint set, within the server's limits; the sidebars draw exactly these."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drift_core.config import ExperimentConfig
from drift_core.images.config import ImageExperimentConfig
from drift_core.limits import Limits, config_from_query
from drift_views.setting_widgets import (
    CHOICE_KINDS,
    IMAGE_WIDGETS,
    LOOKAHEAD_ARM_K,
    TOY_WIDGETS,
    SettingWidget,
    image_encoders,
)

KINDS = CHOICE_KINDS + ("slider", "number_input", "toggle")


def shows(widget: SettingWidget, value, limits: Limits):
    """What the widget's offer shows for ``value``, after checking the offer is one Streamlit takes."""
    args, shown = widget.offer(value, limits)
    assert args["label"]
    if widget.kind in CHOICE_KINDS:
        assert shown in args["options"] and len(set(args["options"])) == len(args["options"])
        for option in args["options"]:
            assert isinstance(args.get("format_func", str)(option), str)
    elif widget.kind in ("slider", "number_input"):
        assert args["min_value"] <= shown <= args["max_value"] and type(shown) is type(value)
    return shown


@pytest.mark.parametrize(
    ("widgets", "config"),
    [(TOY_WIDGETS, ExperimentConfig()), (IMAGE_WIDGETS, ImageExperimentConfig())],
    ids=["2d", "images"],
)
def test_every_widget_is_a_field_of_its_config_and_shows_its_default(widgets, config):
    flat = config.to_flat()
    for name, widget in widgets.items():
        assert name == widget.field and widget.field in flat and widget.kind in KINDS
        if name != "encoder" or flat[name] in image_encoders():
            assert shows(widget, flat[name], Limits()) == flat[name]


def test_a_value_between_the_steps_is_offered_in_order():
    args, shown = TOY_WIDGETS["tau"].offer(0.04, Limits())
    assert shown == 0.04 and args["options"] == sorted(args["options"]) and 0.04 in args["options"]
    assert args["format_func"](0.04) == "0.04"
    args, _ = TOY_WIDGETS["kernel"].offer("cosine", Limits())  # a text choice is appended, not sorted
    assert args["options"][-1] == "cosine"


def test_a_range_widens_to_show_the_sessions_value():
    """A link may set α = 10 (beyond the slider's 0..3): the slider shows 10, not its end, which would
    say 3 while the run trains with 10."""
    args, shown = TOY_WIDGETS["alpha"].offer(10.0, Limits())
    assert (args["min_value"], args["max_value"], shown) == (0.0, 10.0, 10.0)
    args, shown = TOY_WIDGETS["K"].offer(10, Limits(max_k=12))  # beyond the slider's usual 8
    assert (args["max_value"], shown) == (10, 10)


def test_offers_respect_the_server_limits():
    small = Limits(max_batch=100, max_k=3)
    args, _ = TOY_WIDGETS["batch_size"].offer(64, small)
    assert max(args["options"]) == 64 and args["options"] == [16, 32, 64]
    args, shown = TOY_WIDGETS["K"].offer(2, small)
    assert (args["min_value"], args["max_value"], shown) == (0, 3, 2)
    args, shown = LOOKAHEAD_ARM_K.offer(0, small)  # Compare's lookahead arm has at least one term
    assert (args["min_value"], shown) == (1, 1)
    args, shown = IMAGE_WIDGETS["K"].offer(2, small)
    assert args["max_value"] == 3 and shown == 2
    args, shown = LOOKAHEAD_ARM_K.offer(1, Limits(max_k=1))
    assert args["min_value"] == args["max_value"] == shown == 1


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.dictionaries(
        st.sampled_from(sorted(TOY_WIDGETS)),
        st.sampled_from(["0", "1", "3", "0.04", "7e-3", "64", "100000", "-2", "2.5", "gaussian", "true"]),
    ),
    st.integers(2, 9000),
    st.integers(1, 12),
)
def test_any_link_gives_values_every_widget_can_show(params, max_batch, max_k):
    """Whatever a shared link sets (read leniently within the limits), each 2D widget shows exactly the
    session's value: nothing is silently changed by the sidebar."""
    limits = Limits(max_batch=max_batch, max_k=max_k)
    config, _ = config_from_query(ExperimentConfig(), params, limits)
    flat = config.to_flat()
    for name, widget in TOY_WIDGETS.items():
        assert shows(widget, flat[name], limits) == flat[name], name
    if flat["K"] >= 1:
        assert shows(LOOKAHEAD_ARM_K, flat["K"], limits) == flat["K"]
