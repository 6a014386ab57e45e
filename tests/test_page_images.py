"""AppTest of the Images page (pages/cifar10.py) on the offline demo set with tiny steps: the page opens with the
demo label, Step trains both runs, the grids and curves render, FID/KID fills its table (with a small
stand-in extractor: the real Inception network is tested in test_images.py), the settings survive a
page switch, a checkpoint loads into one arm while a bad file is refused, a K change restarts the
pair, and CIFAR10 absent gives a message; beside each grid the feature space in 2D with its group selector,
and the official-style drift options reach the run."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from hypothesis import given
from hypothesis.extra.numpy import arrays
from hypothesis.strategies import floats
from streamlit.testing.v1 import AppTest

from drift_core import palette
from drift_core.images.projection import PlanarFeatureView
from drift_views import figures as ui_figures
from drift_views.figures import resolve_theme
from drift_views.images import ARROW_SHARE, INSIDE_SHARE, drift_rms_figure, feature_space_figures, inside_scale
from tests.app_support import figure_specs
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def isolated_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_DATA_DIR", str(tmp_path / "data"))


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/cifar10.py").run()
    assert not at.exception, at.exception
    return at


class _SmallExtractor:
    """Stand-in for InceptionFeatures: mean colour and 4x4 pooled pixels, float64 [N, 51]."""

    name = "small"
    extractor_hash = "test"

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, images, progress=None):
        x = images.float() / 255
        feats = torch.cat([x.mean((2, 3)), torch.nn.functional.avg_pool2d(x[:, :1], 8).flatten(1) * 3], 1)
        if progress:
            progress(len(images), len(images))
        return feats.double().numpy() + np.random.default_rng(0).normal(0, 1e-3, size=(len(images), feats.shape[1]))


def _pair(at: AppTest):
    """The page's run, where the session keeps it."""
    return at.session_state["lab"].runs["images"]


@pytest.mark.slow
def test_images_page_trains_both_runs_and_evaluates(monkeypatch):
    import drift_core.images.fid as fid

    monkeypatch.setattr(fid, "InceptionFeatures", _SmallExtractor)
    at = open_page()
    assert any("Offline demo" in c.value for c in at.caption)  # the data is named under the header
    at.select_slider(key="batch_size").set_value(8).run()
    at.button(key="step").click().run()
    assert not at.exception, at.exception
    pair = _pair(at)
    assert pair.base_config.train.batch_size == 8 == pair.base_config.train.positives  # the setting reached the run
    assert {a: t.step_count for a, t in pair.trainers.items()} == {"baseline": 1, "lookahead": 1}
    assert pair.trainers["lookahead"].config.drift.K == 1
    assert pair.trainers["baseline"].config.drift.K == 0
    assert len(at.get("image")) == 2  # one sample grid per run, side by side
    assert sum(f"images/s on {pair.trainer.device.type}" in c.value for c in at.caption) == 2  # each arm's numbers
    assert any("baseline" in m.value for m in at.markdown) and any("lookahead K=1" in m.value for m in at.markdown)
    at.button(key="step").click().run()
    assert pair.trainers["baseline"].step_count == 2 and [len(h.records) for h in pair.histories.values()] == [2, 2]
    # FID/KID on demand fills the table with N and the reference named.
    at.selectbox(key="img_fid_n").set_value(50).run()
    at.button(key="img_fid").click().run()
    assert not at.exception, at.exception
    rows = at.session_state["lab"].pages["images"].fid_rows
    assert len(rows) == 2 and all(np.isfinite(r.fid) and r.fid >= 0 for r in rows)
    assert "FID-50 vs 50 demo images" in rows[0].label
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 2
    # A checkpoint saved from one arm loads back into it through the page; a bad file is refused.
    before = pair.trainers["lookahead"]
    data = before.checkpoint_bytes()
    at.radio(key="img_ck_arm").set_value("lookahead").run()
    at.file_uploader(key="img_ck_load").set_value(("look.pt", data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any("Loaded look.pt: lookahead K=1 at step 2" in s.value for s in at.success)
    loaded = pair.trainers["lookahead"]
    assert loaded is not before and loaded.step_count == 2 and pair.step == 2 and not pair.playing
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.parameters(), before.model.parameters()))
    baseline = pair.trainers["baseline"]
    at.radio(key="img_ck_arm").set_value("baseline").run()  # to save the other arm: the upload stays where it went
    assert pair.trainers["baseline"] is baseline and pair.trainers["lookahead"] is loaded
    at.file_uploader(key="img_ck_load").set_value(("bad.pt", b"garbage", "application/octet-stream")).run()
    assert any(e.value.startswith("Not loaded:") for e in at.error)
    # A widget's value lives in the session, not in its key: a page switch keeps it.
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/cifar10.py").run()
    assert at.select_slider(key="batch_size").value == 8 and at.selectbox(key="img_fid_n").value == 50
    assert _pair(at) is pair and pair.step == 2
    # K change restarts both runs with a note.
    at.slider(key="K").set_value(2).run()
    assert _pair(at) is not pair and _pair(at).trainers["lookahead"].config.drift.K == 2
    assert _pair(at).trainers["lookahead"].step_count == 0
    assert any("restarted" in c.value for c in at.caption)


def test_missing_fid_weights_say_how_to_get_them_and_lose_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIFT_FID_WEIGHTS", str(tmp_path / "missing.pt"))
    at = open_page()
    at.button(key="step").click().run()
    at.selectbox(key="img_fid_n").set_value(50).run()
    at.button(key="img_fid").click().run()
    assert not at.exception, at.exception
    assert any("FID Inception weights were not found" in e.value and "DRIFT_FID_WEIGHTS" in e.value for e in at.error)
    assert _pair(at).step == 1 and not at.session_state["lab"].pages["images"].fid_rows


def test_images_page_cifar10_absent_shows_message():
    at = open_page()
    at.selectbox(key="dataset").set_value("cifar10").run()
    assert not at.exception, at.exception
    assert any("cifar-10-python.tar.gz" in e.value for e in at.error)
    assert any("demo" in i.value for i in at.info)


def test_images_page_draws_the_feature_space_beside_each_grid_and_its_options():
    """Beside each arm's grid: one feature group in the PCA plane of the real features (real, V,
    generated), on the same axes for both arms; the group selector offers the run's groups and keeps the
    choice in the session; the official-style options reach the run (per-location drift, mean and std
    as two groups) and the pair trains with them."""
    at = open_page()
    figures = [spec for spec in figure_specs(at) if "PC1" in spec["layout"]["xaxis"].get("title", {}).get("text", "")]
    assert len(figures) == 2  # baseline and lookahead
    assert [t["name"].split(" ")[0] for t in figures[0]["data"]] == ["real", "V", "generated"]
    assert figures[0]["layout"]["xaxis"]["range"] == figures[1]["layout"]["xaxis"]["range"]
    pair = _pair(at)
    selector = at.selectbox(key="img_group")
    assert tuple(selector.options) == pair.trainer.feature_groups and selector.value == "stage1.mean_std"
    selector.set_value("stage4.map").run()
    assert not at.exception, at.exception
    assert at.session_state["lab"].pages["images"].feature_group == "stage4.map"
    after = [spec for spec in figure_specs(at) if "PC1" in spec["layout"]["xaxis"].get("title", {}).get("text", "")]
    assert len(after) == 2 and after[0]["data"] != figures[0]["data"]
    at.toggle(key="per_location").set_value(True).run()
    at.toggle(key="separate_mean_std").set_value(True).run()
    assert not at.exception, at.exception
    official = _pair(at)
    assert official is not pair
    assert official.base_config.model.per_location and official.base_config.model.separate_mean_std
    assert official.trainer.batched_drift_fn is not None
    assert {"stage1.mean", "stage1.std"} <= set(at.selectbox(key="img_group").options)
    assert at.selectbox(key="img_group").value == "stage4.map"
    at.button(key="step").click().run()
    assert not at.exception, at.exception
    assert {a: t.step_count for a, t in official.trainers.items()} == {"baseline": 1, "lookahead": 1}
    assert len(official.trainers["baseline"].last_record.group_rms) == 11
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/cifar10.py").run()
    assert at.selectbox(key="img_group").value == "stage4.map" and at.toggle(key="per_location").value


def test_feature_space_figures_share_axes_and_arrow_scale_in_the_app_palette():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 2))
    views = {
        arm: PlanarFeatureView("g", 3, rng.normal(size=(8, 2)) + shift, real, rng.normal(size=(8, 2)) * 5, (0.5, 0.2))
        for arm, shift in (("baseline", 4.0), ("lookahead", -1.0))
    }
    out = feature_space_figures(views)
    assert list(out) == ["baseline", "lookahead"]
    base, look = out["baseline"], out["lookahead"]
    go.Figure(resolve_theme(base))  # a valid Plotly figure (full validation) once the theme colours are in
    x0, x1 = base["layout"]["xaxis"]["range"]
    y0, y1 = base["layout"]["yaxis"]["range"]
    assert base["layout"]["xaxis"]["range"] == look["layout"]["xaxis"]["range"]
    every = np.concatenate([real] + [v.generated for v in views.values()])
    assert x0 <= every[:, 0].min() and every[:, 0].max() <= x1 and y0 <= every[:, 1].min() and every[:, 1].max() <= y1
    real_trace, arrows, generated = base["data"]
    assert real_trace["marker"]["color"] == palette.DATA.colour
    assert generated["marker"]["color"] == palette.GENERATED.colour
    assert arrows["line"]["color"] == ui_figures.V.colour
    # one arrow scale for both arms: the median drawn arrow over both is ARROW_SHARE of the width
    drawn = [
        np.hypot(
            np.asarray(f["data"][1]["x"][1::3]) - f["data"][1]["x"][0::3],
            np.asarray(f["data"][1]["y"][1::3]) - f["data"][1]["y"][0::3],
        )
        for f in (base, look)
    ]
    assert np.median(np.concatenate(drawn)) == pytest.approx(ARROW_SHARE * (x1 - x0))
    assert (
        base["data"][1]["name"] == look["data"][1]["name"] and "PC1 (50%)" in base["layout"]["xaxis"]["title"]["text"]
    )


def test_feature_arrows_stay_in_the_picture_when_one_arm_drifts_far_more():
    """At step 0 a lookahead arm's V can be many times the baseline's: the shared scale shortens every
    arrow so that they all end inside the axes, and both arms keep one scale."""
    rng = np.random.default_rng(1)
    real = rng.normal(size=(60, 2))
    views = {
        "baseline": PlanarFeatureView("g", 3, rng.normal(size=(16, 2)), real, rng.normal(size=(16, 2)), (0.5, 0.2)),
        "lookahead": PlanarFeatureView(
            "g", 3, rng.normal(size=(16, 2)), real, 40 * rng.normal(size=(16, 2)), (0.5, 0.2)
        ),
    }
    out = feature_space_figures(views)
    x0, x1 = out["baseline"]["layout"]["xaxis"]["range"]
    y0, y1 = out["baseline"]["layout"]["yaxis"]["range"]
    tips = np.concatenate(
        [np.stack([f["data"][1]["x"][1::3], f["data"][1]["y"][1::3]], 1).astype(float) for f in out.values()]
    )
    inside = (
        (tips[:, 0] >= x0 - 1e-9) & (tips[:, 0] <= x1 + 1e-9) & (tips[:, 1] >= y0 - 1e-9) & (tips[:, 1] <= y1 + 1e-9)
    )
    assert inside.mean() >= INSIDE_SHARE
    assert out["baseline"]["data"][1]["name"] == out["lookahead"]["data"][1]["name"]  # one scale for both


@given(
    arrays(np.float64, (12, 2), elements=floats(-3, 3)),
    arrays(np.float64, (12, 2), elements=floats(-50, 50)),
    floats(0.5, 1.0),
)
def test_inside_scale_keeps_the_asked_share_of_tips_in_the_box(starts, vectors, share):
    bounds = (-3.0, 3.0, -3.0, 3.0)
    scale = inside_scale(starts, vectors, bounds, share)
    tips = starts + min(scale, 1e6) * vectors
    inside = ((tips >= -3 - 1e-6) & (tips <= 3 + 1e-6)).all(1)
    assert inside.mean() >= share - 1e-9


def test_drift_rms_figure_draws_each_arm_over_its_finite_steps():
    def record(step, rms, diverged=False):
        return SimpleNamespace(step=step, drift_rms=rms, diverged=diverged)

    histories = {
        "baseline": SimpleNamespace(records=[record(1, 0.5), record(2, 0.4)]),
        "lookahead": SimpleNamespace(records=[record(1, 0.9), record(2, float("nan"), diverged=True)]),
    }
    run = SimpleNamespace(histories=histories, label=lambda name: name if name == "baseline" else f"{name} K=1")
    figure = drift_rms_figure(run)
    lines = {trace["name"]: (list(trace["x"]), list(trace["y"])) for trace in figure["data"]}
    assert lines == {"baseline": ([1, 2], [0.5, 0.4]), "lookahead K=1": ([1], [0.9])}
    assert figure["layout"]["annotations"] == []  # points to draw: no 'press Play' note


def test_settings_of_the_same_name_stay_on_their_own_page():
    """The images page's widgets have the 2D pages' field names as keys (tau, batch_size, K, dataset,
    steps_per_frame): each page shows and changes its own settings, whichever page was visited last."""
    at = open_page()
    at.switch_page("pages/playground.py").run()
    at.select_slider(key="tau").set_value(0.2).run()
    at.select_slider(key="batch_size").set_value(64).run()
    at.select_slider(key="steps_per_frame").set_value(5).run()
    assert not at.exception, at.exception
    at.switch_page("pages/cifar10.py").run()
    assert not at.exception, at.exception
    assert at.select_slider(key="tau").value == 0.05 and at.select_slider(key="batch_size").value == 32
    assert at.slider(key="steps_per_frame").value == 1 and at.selectbox(key="dataset").value == "demo-digits"
    at.select_slider(key="tau").set_value(0.1).run()
    at.slider(key="K").set_value(2).run()
    at.switch_page("pages/playground.py").run()
    assert not at.exception, at.exception
    config = at.session_state["lab"].config
    assert (config.drift.tau, config.train.batch_size, config.drift.K) == (0.2, 64, 0)
    assert at.select_slider(key="tau").value == 0.2 and at.slider(key="K").value == 0
    assert at.select_slider(key="steps_per_frame").value == 5 and at.selectbox(key="dataset").value == "checkerboard"
    at.switch_page("pages/cifar10.py").run()
    images = at.session_state["lab"].pages["images"].config
    assert (images.drift.tau, images.drift.K, images.train.batch_size) == (0.1, 2, 32)
    assert at.select_slider(key="tau").value == 0.1 and at.slider(key="K").value == 2


def test_the_images_page_state_sets_fields_with_their_companions_and_refuses_bad_values():
    from drift_views.images import NOISE_DIMS, ImagesPage

    page = ImagesPage()
    page.set("generator", "base")
    page.set("batch_size", 16)
    assert page.config.model.noise_dim == NOISE_DIMS["base"] and page.config.train.positives == 16
    before = page.config
    page.set("tau", -1.0)
    assert (
        page.config == before and page.setting_error.startswith("Setting not applied: ") and "tau" in page.setting_error
    )
    page.set("tau", 0.1)
    assert page.config.drift.tau == 0.1 and page.setting_error == ""
