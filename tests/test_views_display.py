"""Display settings (drift_views.display): read leniently from any link, and written back so that a
link reproduces them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drift_views.display import LAYER_NAMES, VIEW_PARAMS, ViewSettings


def test_view_settings_from_a_link_are_read_leniently():
    view, notices = ViewSettings.from_query(
        {
            "steps_per_frame": "auto",
            "layers": "V,density,nope",
            "arrow_scale": "500",
            "compare_layers": "density,V⁺",
            "presenter": "yes",
        },
        20,
    )
    assert view.steps_per_frame == 0 and view.layers == ("V", "density") and view.arrow_scale == 50
    assert view.compare_layers == ("V⁺",) and view.presenter  # Compare offers only the arrow layers
    assert len(notices) == 3


@settings(max_examples=300, deadline=1000, derandomize=True)
@given(st.dictionaries(st.sampled_from(VIEW_PARAMS + ("other",)), st.text(max_size=300) | st.binary(max_size=50)))
def test_any_link_gives_valid_view_settings_and_never_raises(params):
    view, notices = ViewSettings.from_query(params, 50)
    assert 0 <= view.steps_per_frame <= 50 and 1 <= view.arrow_scale <= 50
    assert set(view.layers) <= set(LAYER_NAMES) and set(view.compare_layers) <= set(LAYER_NAMES[:4])
    assert all(len(n) < 200 for n in notices)


_SETTINGS = st.builds(
    ViewSettings,
    steps_per_frame=st.integers(0, 50),
    fairness=st.booleans(),
    layers=st.lists(st.sampled_from(LAYER_NAMES), unique=True).map(tuple),
    compare_layers=st.lists(st.sampled_from(LAYER_NAMES[:4]), unique=True).map(tuple),
    difference=st.booleans(),
    arrow_scale=st.integers(1, 50),
    presenter=st.booleans(),
    contrast=st.booleans(),
)


@settings(max_examples=200, deadline=1000, derandomize=True)
@given(_SETTINGS)
def test_a_link_written_from_settings_reads_back_as_the_same_settings(view):
    query = view.to_query()
    assert set(query) <= set(VIEW_PARAMS) and all(isinstance(v, str) for v in query.values())
    read, notices = ViewSettings.from_query(query, 50)
    assert read == view and not notices
