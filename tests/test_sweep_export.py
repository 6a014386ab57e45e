"""Export (GIF/MP4/CSV/JSON/URL), the heatmap picture, guided scenarios, estimator noise. (The sweep engine and
the sweep command are tested in test_sweep.py and test_cli_sweep.py.)"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from drift_core.cli import main as cli_main
from drift_core.config import ExperimentConfig
from drift_core.drift import drifting_field
from drift_core.estimator_noise import estimator_noise
from drift_core.export import config_json, config_query, gif_bytes, mp4_bytes, mp4_encoder, records_csv
from drift_core.limits import config_from_query
from drift_core.render import heatmap_image
from drift_core.runtime import stream
from drift_core.scenarios import SCENARIOS
from drift_core.train import Trainer

TINY = ExperimentConfig().with_values(
    {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 32, "seed": 3}
)


# ---- pictures ------------------------------------------------------------------------------------
def test_heatmap_colours_best_cell_brightest():
    values = np.array([[0.5, 0.1], [0.3, np.nan]])
    img = heatmap_image(values, ["a", "b"], ["c", "d"], lower_is_better=True, cell=40)
    left, top = 110, 14
    at = lambda i, j: img.getpixel((left + j * 40 + 3, top + i * 40 + 3))  # noqa: E731  (corner, clear of text)
    brightness = lambda p: sum(p)  # noqa: E731
    assert brightness(at(0, 1)) > brightness(at(1, 0)) > brightness(at(0, 0))
    assert at(1, 1) == (200, 200, 200)  # NaN is grey
    flipped = heatmap_image(values, ["a", "b"], ["c", "d"], lower_is_better=False, cell=40)
    assert sum(flipped.getpixel((left + 3, top + 3))) > sum(flipped.getpixel((left + 40 + 3, top + 3)))


# ---- export ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_with_snapshots():
    trainer = Trainer(TINY)
    snaps, records = [trainer.snapshot(64)], []
    for _ in range(5):
        records.extend(trainer.run(2))
        snaps.append(trainer.snapshot(64))
    return trainer, snaps, records


def test_gif_export_has_one_frame_per_snapshot(run_with_snapshots):
    _, snaps, _ = run_with_snapshots
    data = gif_bytes(snaps, size=128, title="tiny")
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.is_animated and gif.n_frames == len(snaps) == 6
    assert gif.size == (128, 128) and gif.info.get("loop") == 0


def test_mp4_export_with_bundled_encoder(run_with_snapshots, tmp_path):
    assert mp4_encoder() is not None, "imageio-ffmpeg (requirements.txt) should provide an encoder"
    _, snaps, _ = run_with_snapshots
    data = mp4_bytes(snaps, size=130, fps=5)
    assert data[4:8] == b"ftyp"
    path = tmp_path / "run.mp4"
    path.write_bytes(data)
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        assert reader.count_frames() == len(snaps)
        assert reader.get_data(0).shape == (128, 128, 3)  # rounded down to a multiple of 16
    finally:
        reader.close()


def test_metrics_csv_joins_evaluations(run_with_snapshots):
    _, _, records = run_with_snapshots
    text = records_csv(records, [{"step": 4, "wall_s": 0.1, "energy": 0.25}, {"step": 0, "wall_s": 0.0, "energy": 0.9}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["step"]) for r in rows] == list(range(0, 11))
    assert rows[0]["energy"] == "0.9" and rows[4]["energy"] == "0.25" and rows[5]["energy"] == ""
    assert float(rows[3]["loss"]) == pytest.approx(records[2].loss)


def test_config_json_round_trips_through_cli_and_url(tmp_path):
    cfg = TINY.with_values({"method": "lookahead", "K": 2, "tau": 0.07, "steps": 2})
    text = config_json(cfg)
    assert ExperimentConfig.from_json(text) == cfg
    path = tmp_path / "config.json"
    path.write_text(text)
    assert (
        cli_main(["train", "--config", str(path), "--out", str(tmp_path / "run"), "--quiet", "--eval-samples", "16"])
        == 0
    )
    assert ExperimentConfig.from_json((tmp_path / "run" / "config.json").read_text()) == cfg
    from urllib.parse import parse_qsl

    restored, notices = config_from_query(ExperimentConfig(), dict(parse_qsl(config_query(cfg))))
    assert restored == cfg and notices == []


# ---- scenarios ---------------------------------------------------------------------------------------
def test_scenarios_are_valid_and_explained():
    assert {
        "start_between",
        "start_far",
        "start_collapsed",
        "attraction_only",
        "tau_too_small",
        "tau_too_large",
        "tiny_batch",
    } <= set(SCENARIOS)
    inits = {SCENARIOS[k].config.model.init for k in ("start_between", "start_far", "start_collapsed")}
    assert inits == {"between", "far", "collapsed"}
    assert SCENARIOS["attraction_only"].config.drift.attraction_only
    small, large = SCENARIOS["tau_too_small"].config.drift.tau, SCENARIOS["tau_too_large"].config.drift.tau
    assert small < ExperimentConfig().drift.tau < large
    assert SCENARIOS["tiny_batch"].config.train.batch_size <= 16
    for s in SCENARIOS.values():
        s.config.validate()
        assert len(re.findall(r"[.!?](?:\s|$)", s.watch)) == 2, s.key
        assert ExperimentConfig.from_json(s.config.to_json()) == s.config


def test_scenario_claims_hold_in_a_short_run():
    """Attraction only stays a tight clump where the full field spreads out; the far start (normalised
    distances) does travel to the data."""
    from drift_core.data.toy2d import mixture_modes
    from drift_core.metrics import mode_coverage

    small = {"width": 32, "batch_size": 256}
    spread = {}
    for attraction_only in (True, False):
        trainer = Trainer(
            SCENARIOS["attraction_only"].config.with_values({**small, "attraction_only": attraction_only})
        )
        trainer.run(100)
        x = trainer.sample(512)
        spread[attraction_only] = float(x.std(0).norm())
        covered = mode_coverage(x, mixture_modes("8gaussians"), 0.05).covered
        if attraction_only:
            assert covered <= 1
    assert spread[True] < 0.5 * spread[False]
    moved = {}
    for normalize in (True, False):
        far = Trainer(SCENARIOS["start_far"].config.with_values({**small, "normalize_distance": normalize}))
        before = far.sample(256).mean(0)
        far.run(40)
        moved[normalize] = float((far.sample(256).mean(0) - before).norm())
    assert moved[True] > 0.3 and moved[False] < 1e-3  # raw kernel weight ~e^-40: frozen, as the text says


# ---- estimator noise ---------------------------------------------------------------------------------
def test_estimator_noise_shrinks_with_batch_size():
    trainer = Trainer(TINY.with_values({"width": 32}))
    trainer.run(10)
    small = estimator_noise(trainer, resamples=6, probes=24, batch_size=8)
    large = estimator_noise(trainer, resamples=6, probes=24, batch_size=512)
    assert small.samples.shape == (6, 24, 2) and small.spread.shape == (24,)
    assert np.median(small.spread) > 3 * np.median(large.spread)
    again = estimator_noise(trainer, resamples=6, probes=24, batch_size=8)
    np.testing.assert_array_equal(again.samples, small.samples)


def test_estimator_noise_matches_direct_drift_computation():
    """Baseline: each resample's V at the probes is drifting_field on [probes ; fresh batch]."""
    trainer = Trainer(TINY)
    trainer.run(3)
    noise = estimator_noise(trainer, resamples=2, probes=4, batch_size=32)
    g = stream(0, "estimator_noise")
    with torch.no_grad():
        trainer.model.eval()
        q = trainer.model(trainer.display_noise[:4])
        x = trainer.model(torch.randn(32, TINY.model.noise_dim, generator=g))
        y = trainer.sampler(32, generator=g)
        v = drifting_field(torch.cat([q, x]), y, tau=TINY.drift.tau).v[:4]
    np.testing.assert_allclose(noise.samples[0], v.double().numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(noise.mean, noise.samples.mean(0))
    expected = np.sqrt(((noise.samples - noise.mean) ** 2).sum(-1).mean(0))
    np.testing.assert_allclose(noise.spread, expected)


def test_side_by_side_gif_pairs_frames_of_each_arm(run_with_snapshots):
    from drift_core.export import frames_mp4, side_by_side_frames, side_by_side_gif

    _, snaps, _ = run_with_snapshots
    gif = Image.open(io.BytesIO(side_by_side_gif({"baseline": snaps, "lookahead": snaps[:4]}, size=96)))
    assert gif.n_frames == 4 and gif.size == (192, 96)  # cut to the shorter run
    frames = side_by_side_frames({"a": snaps[:2], "b": snaps[:2], "c": snaps[:2]}, size=50)
    assert data_size(frames_mp4(frames, fps=4)) > 0 and frames[0].size == (150, 50)


def data_size(data: bytes) -> int:
    assert data[4:8] == b"ftyp"
    return len(data)


def test_rows_csv_unions_columns_across_arms():
    """The comparison export: arms with different columns (one drift_rms per term) share one CSV."""
    import csv as _csv
    import io as _io

    from drift_core.export import record_rows, rows_csv

    base = record_rows([{"step": 1, "loss": 0.5, "drift_rms_0": 0.1}], [{"step": 0, "wall_s": 0.0, "energy": 0.9}])
    look = record_rows([{"step": 1, "loss": 0.4, "drift_rms_0": 0.1, "drift_rms_1": 0.05}])
    text = rows_csv([{"arm": "baseline", **r} for r in base] + [{"arm": "lookahead", **r} for r in look], "arm")
    parsed = list(_csv.DictReader(_io.StringIO(text)))
    assert list(parsed[0]) == ["arm", "step", "energy", "loss", "drift_rms_0", "drift_rms_1"]
    assert [(r["arm"], r["step"]) for r in parsed] == [("baseline", "0"), ("baseline", "1"), ("lookahead", "1")]
    assert parsed[1]["drift_rms_1"] == "" and parsed[2]["drift_rms_1"] == "0.05" and parsed[0]["energy"] == "0.9"
    assert rows_csv([], "arm") == "arm\n"
