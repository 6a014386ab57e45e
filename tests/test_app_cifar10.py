"""AppTest of the Images (CIFAR10) page on the offline demo set with tiny steps: the page opens with the
demo label, Step trains both runs, the grids and curves render, FID/KID fills its table (with a small
stand-in extractor: the real Inception network is tested in test_images.py), the settings survive a
page switch, a checkpoint loads into one arm while a bad file is refused, a K change restarts the
pair, and CIFAR10 absent gives a message."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

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
    assert any("Offline demo" in i.value for i in at.info)
    at.select_slider(key="img_batch").set_value(8).run()
    at.button(key="step").click().run()
    assert not at.exception, at.exception
    pair = _pair(at)
    assert pair.base_config.train.batch_size == 8 == pair.base_config.train.positives  # the setting reached the run
    assert {a: t.step_count for a, t in pair.trainers.items()} == {"baseline": 1, "lookahead": 1}
    assert pair.trainers["lookahead"].config.drift.K == 1
    assert pair.trainers["baseline"].config.drift.K == 0
    assert len(at.get("image")) == 2  # one sample grid per run, side by side
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
    at.file_uploader(key="img_ck_load").set_value(("bad.pt", b"garbage", "application/octet-stream")).run()
    assert any(e.value.startswith("Not loaded:") for e in at.error)
    # A widget's value lives in the session, not in its key: a page switch keeps it.
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/cifar10.py").run()
    assert at.select_slider(key="img_batch").value == 8 and at.selectbox(key="img_fid_n").value == 50
    assert _pair(at) is pair and pair.step == 2
    # K change restarts both runs with a note.
    at.slider(key="img_K").set_value(2).run()
    assert _pair(at) is not pair and _pair(at).trainers["lookahead"].config.drift.K == 2
    assert _pair(at).trainers["lookahead"].step_count == 0
    assert any("restarted" in c.value for c in at.caption)


def test_images_page_cifar10_absent_shows_message():
    at = open_page()
    at.selectbox(key="img_dataset").set_value("cifar10").run()
    assert not at.exception, at.exception
    assert any("cifar-10-python.tar.gz" in e.value for e in at.error)
    assert any("demo" in i.value for i in at.info)
