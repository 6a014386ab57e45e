"""One object per browser session (ui.session): a tour of every page, clicking through its controls,
leaves exactly one session-state key that is not a widget's, ``lab``; every widget key is seeded from
it, so the settings survive page switches (the browser test checks the same with real clicks)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app_support import SMALL_URL, lab_of, open_page, tick
from ui.session import KEY

CONFIG_FIELDS = {
    "dataset",
    "init",
    "width",
    "depth",
    "seed",
    "K",
    "tau",
    "multi_temperature",
    "batch_size",
    "lr",
    "steps",
    "alpha",
    "scaling",
    "weighting",
    "negatives",
    "attraction_only",
    "normalize_distance",
}


def keys_now(at: AppTest) -> tuple[set[str], set[str]]:
    """(the app's own keys, widget keys) in the session state after the last run."""
    state = at.session_state._state._state
    everything = set(state.filtered_state)
    widgets = {key for key in everything if key in state._key_id_mapper}
    return everything - widgets, widgets


def test_a_tour_of_every_page_keeps_all_state_in_one_object():
    at = open_page("playground", {**SMALL_URL, "steps_per_frame": "10"})
    own, widgets = set(), set()

    def look() -> None:
        app, widget = keys_now(at)
        assert app == {KEY}, f"state outside the session object: {sorted(app - {KEY})}"
        own.update(app)
        widgets.update(widget)

    look()
    at.button(key="play").click().run()
    tick(at, 2)
    at.select_slider(key="tau").set_value(0.1).run()
    look()
    at.button(key="play").click().run()
    at.select_slider(key="timeline").set_value(0).run()
    look()
    for page in ("compare", "inspector", "sweep", "cifar10", "home", "playground"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        look()
    assert lab_of(at).config.drift.tau == 0.1  # the tour kept the setting
    assert at.select_slider(key="tau").value == 0.1
    other = widgets - CONFIG_FIELDS
    print(
        f"{len(own)} app key; {len(widgets)} widget keys ({len(widgets & CONFIG_FIELDS)} config fields, "
        f"{len(other)} others: {sorted(other)})"
    )
