"""AppTest of the Images (CIFAR10) page on the offline demo set with tiny steps: the page opens with the
demo label, Step trains both runs, the grids and curves render, FID/KID fills its table (with a small
stand-in extractor: the real Inception network is tested in test_images.py), CIFAR10 absent gives a
message, and a checkpoint saved by the page loads back while a bad file is refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from drift_core.checkpoint import CheckpointError
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


@pytest.mark.slow
def test_images_page_trains_both_runs_and_evaluates(monkeypatch):
    import drift_core.images.fid as fid

    monkeypatch.setattr(fid, "InceptionFeatures", _SmallExtractor)
    at = open_page()
    assert any("Offline demo" in i.value for i in at.info)
    at.select_slider(key="img_batch").set_value(8).run()
    at.button(key="step").click().run()
    assert not at.exception, at.exception
    pair = at.session_state["lab"].runs["images"]
    assert {a: t.step_count for a, t in pair.trainers.items()} == {"baseline": 1, "lookahead": 1}
    assert pair.trainers["lookahead"].config.drift.K == 1
    assert pair.trainers["baseline"].config.drift.K == 0
    assert len(at.get("image")) == 2  # one sample grid per run, side by side
    assert any("baseline" in m.value for m in at.markdown) and any("lookahead K=1" in m.value for m in at.markdown)
    at.button(key="step").click().run()
    assert pair.trainers["baseline"].step_count == 2 and len(pair.rms_rows()) == 4
    # FID/KID on demand fills the table with N and the reference named.
    at.selectbox(key="img_fid_n").set_value(50).run()
    at.button(key="img_fid").click().run()
    assert not at.exception, at.exception
    assert len(pair.fid_rows) == 2 and all(np.isfinite(r.fid) and r.fid >= 0 for r in pair.fid_rows)
    assert "FID-50 vs 50 demo images" in pair.fid_rows[0].label
    # Checkpoint bytes from the page load back; a bad file is refused with a message.
    data = pair.checkpoint_bytes("lookahead")
    restored = pair.load_checkpoint("lookahead", data)
    assert restored.step_count == 2 and restored.config.drift.K == 1
    with pytest.raises(CheckpointError):
        pair.load_checkpoint("lookahead", b"garbage")
    # K change restarts both runs with a note.
    at.slider(key="img_K").set_value(2).run()
    assert at.session_state["lab"].runs["images"].trainers["lookahead"].step_count == 0
    assert any("restarted" in c.value for c in at.caption)


def test_images_page_cifar10_absent_shows_message():
    at = open_page()
    at.selectbox(key="img_dataset").set_value("cifar10").run()
    assert not at.exception, at.exception
    assert any("cifar-10-python.tar.gz" in e.value for e in at.error)
    assert any("demo" in i.value for i in at.info)
