"""Sweeps (engine, cache, cancel, CLI), export (GIF/MP4/CSV/JSON/URL), guided scenarios, estimator noise."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from drift_core.cli import main as cli_main
from drift_core.limits import config_from_query
from drift_core.config import ConfigError, ExperimentConfig
from drift_core.drift import drifting_field
from drift_core.estimator_noise import estimator_noise
from drift_core.export import config_json, config_query, gif_bytes, mp4_bytes, mp4_encoder, records_csv
from drift_core.metrics import energy_distance
from drift_core.render import heatmap_image
from drift_core.runtime import make_generator, stream
from drift_core.scenarios import SCENARIOS
from drift_core import sweep as sweep_mod
from drift_core.sweep import SweepJob, SweepSpec, run_sweep
from drift_core.train import Trainer

TINY = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4,
                                       "batch_size": 32, "seed": 3})


def tiny_spec(**kw) -> SweepSpec:
    args = dict(base=TINY, x_axis="K", x_values=(0, 1), y_axis="tau", y_values=(0.05, 0.2), steps=4,
                eval_samples=64, particles=16)
    args.update(kw)
    return SweepSpec(**args)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---- sweep engine ----------------------------------------------------------------------------------
def test_sweep_grid_matches_independent_runs_and_cache_is_reused(cache, monkeypatch):
    spec = tiny_spec()
    fractions = []
    result = run_sweep(spec, progress=lambda f, m: fractions.append(f))
    assert result.complete and not result.cancelled and result.cached_cells == 0
    energy = result.grid("energy")
    assert energy.shape == (2, 2) and np.isfinite(energy).all()
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # cells: rows = tau, cols = K; K = 0 is the baseline
    assert spec.cell_config(0, 0).drift.method == "baseline" and spec.cell_config(1, 1).drift.K == 1
    assert spec.cell_config(1, 0).drift.tau == 0.2 and spec.cell_config(1, 0).train.steps == 4
    # one cell recomputed independently: same seed, same steps, metric from scratch
    cfg = spec.cell_config(1, 1)
    trainer = Trainer(cfg)
    trainer.run(4)
    # the app's and the CLI's evaluation convention: fixed evaluation noise vs a fixed reference sample
    noise = torch.randn(64, cfg.model.noise_dim, generator=stream(cfg.train.seed, "evaluation"))
    reference = trainer.sampler(64, generator=stream(cfg.train.seed, "reference"))
    with torch.no_grad():
        generated = trainer.model.eval()(noise)
    assert energy[1, 1] == pytest.approx(energy_distance(generated, reference), rel=1e-6)
    assert result.cells[1][1].particles.shape == (16, 2)
    assert len(list(cache.glob("*.npz"))) == 4
    # a repeated sweep never trains: every cell comes from the cache, with identical numbers
    monkeypatch.setattr(sweep_mod, "Trainer", lambda *a, **k: pytest.fail("a cached cell was retrained"))
    again = run_sweep(spec)
    assert again.cached_cells == 4
    for metric in ("energy", "w2", "modes"):
        np.testing.assert_array_equal(again.grid(metric), result.grid(metric))
    np.testing.assert_array_equal(again.cells[0][1].particles, result.cells[0][1].particles)


def test_sweep_keys_depend_on_what_matters():
    a, b = tiny_spec(), tiny_spec()
    assert a.key() == b.key() and a.cell_key(0, 1) == b.cell_key(0, 1)
    assert a.cell_key(0, 0) != a.cell_key(0, 1)
    assert tiny_spec(steps=5).key() != a.key()
    assert tiny_spec(base=TINY.with_values({"seed": 4})).key() != a.key()


def test_sweep_cancel_keeps_finished_cells(cache):
    cancel = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(message)
        if "cell 2/4" in message:
            cancel.set()

    result = run_sweep(tiny_spec(), progress=progress, cancel=cancel)
    assert result.cancelled and not result.complete
    assert result.cells[0][0] is not None and result.cells[1][1] is None
    assert np.isnan(result.grid("energy")[1, 1])
    assert len(list(cache.glob("*.npz"))) == 1  # only the finished cell was cached


def test_sweep_job_runs_in_background_and_cancels(cache):
    job = SweepJob(tiny_spec(steps=2000)).start()
    job.cancel()
    assert job.wait(timeout=60)
    assert job.error is None and job.result.cancelled and job.message == "cancelled"
    done = SweepJob(tiny_spec()).start()
    assert done.wait(timeout=120) and done.result.complete and done.fraction == pytest.approx(1.0)


def assert_same_cells(a, b) -> None:
    """Two sweep results hold the same numbers, cell by cell, exactly (not the wall times)."""
    assert a.spec == b.spec
    np.testing.assert_array_equal(a.reference, b.reference)
    for i, j in a.spec.cells():
        x, y = a.cells[i][j], b.cells[i][j]
        assert (x is None) == (y is None), (i, j)
        if x is None:
            continue
        assert x.metrics.keys() == y.metrics.keys()
        for key in x.metrics:
            assert x.metrics[key] == y.metrics[key] or (math.isnan(x.metrics[key]) and math.isnan(y.metrics[key])), key
        np.testing.assert_array_equal(x.particles, y.particles)
        assert (x.diverged, x.steps_done) == (y.diverged, y.steps_done)


def test_sweep_job_in_a_worker_process_equals_run_sweep_here(cache, tmp_path):
    """The app's job (cells in a worker process, one torch thread) gives exactly the numbers of
    run_sweep in this process (the CLI's path), cell by cell; the worker writes the cache."""
    spec = tiny_spec(steps=12, base=TINY.with_values({"batch_size": 64}))
    job = SweepJob(spec, directory=tmp_path / "job").start()
    fractions = []
    while not job.done and len(fractions) < 100_000:
        fractions.append(job.fraction)
        assert isinstance(job.message, str)
        job.wait(timeout=0.05)
    assert job.wait(timeout=120) and job.error is None, job.error
    assert job.result.complete and not job.result.cancelled and job.result.cached_cells == 0
    assert job.fraction == pytest.approx(1.0) and job.message == "done"
    assert fractions == sorted(fractions)
    assert len(list((tmp_path / "job").glob("*.npz"))) == 4
    assert not list((tmp_path / "job").glob("*.tmp*"))  # temp files were renamed into place
    here = run_sweep(spec, directory=tmp_path / "here")
    assert_same_cells(job.result, here)
    # and the job reads the cells it cached, without training
    again = SweepJob(spec, directory=tmp_path / "job").start()
    assert again.wait(timeout=120) and again.result.cached_cells == 4
    assert_same_cells(again.result, here)


def test_sweep_worker_is_another_process_with_one_torch_thread():
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=sweep_mod._mp_context(), initializer=sweep_mod._worker_init,
                             initargs=(None, None)) as pool:
        assert pool.submit(os.getpid).result(timeout=120) != os.getpid()
        assert pool.submit(torch.get_num_threads).result(timeout=60) == 1


def test_sweep_job_cancel_mid_sweep_keeps_finished_cells(cache):
    job = SweepJob(tiny_spec(steps=1500)).start()
    deadline = time.monotonic() + 240
    while job.fraction < 0.3 and not job.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not job.done, "the sweep finished before it could be cancelled"
    assert job.message.startswith("cell 2/4")
    stop = time.monotonic()
    job.cancel()
    assert job.wait(timeout=60) and job.error is None
    assert time.monotonic() - stop < 30  # the running cell stopped at a step, not at its end
    result = job.result
    assert result.cancelled and not result.complete and job.message == "cancelled"
    assert result.cells[0][0] is not None and result.cells[1][1] is None
    assert len(list(cache.glob("*.npz"))) == 1


def test_sweep_job_on_another_executor_and_errors_as_messages(cache, monkeypatch):
    """Any concurrent.futures executor runs the job's cells (a thread pool here; a Dask client's
    executor for clusters); an error in a cell reaches the job as a message."""
    from concurrent.futures import ThreadPoolExecutor

    spec = tiny_spec()
    # one thread: models are initialised from torch's global RNG (drift_core.models), so two cells
    # initialised at once in one process would not reproduce; worker processes each have their own
    with ThreadPoolExecutor(1) as pool:
        job = SweepJob(spec, executor=pool).start()
        assert job.wait(timeout=120) and job.error is None and job.result.complete
        assert_same_cells(job.result, run_sweep(spec, use_cache=False))

        def boom(*args, **kwargs):
            raise RuntimeError("the cell exploded")

        monkeypatch.setattr(sweep_mod, "sweep_cell_task", boom)
        failed = SweepJob(spec, executor=pool, use_cache=False).start()
        assert failed.wait(timeout=60)
        assert failed.result is None and failed.error == "RuntimeError: the cell exploded"
        assert failed.done and failed.message == "failed"


def test_sweep_spec_rejects_bad_input():
    with pytest.raises(ConfigError, match="different axes"):
        tiny_spec(y_axis="K", y_values=(1, 2))
    with pytest.raises(ConfigError, match="integers"):
        tiny_spec(x_values="0,abc")
    with pytest.raises(ConfigError, match="tau"):
        tiny_spec(y_values=(0.05, -1.0))
    with pytest.raises(ConfigError, match="two of K, tau"):
        tiny_spec(x_axis="width", x_values=(8,))
    with pytest.raises(ConfigError, match="limit"):
        tiny_spec(x_axis="batch_size", x_values=(10**6,))


# ---- CLI -----------------------------------------------------------------------------------------
def test_cli_sweep_2x2_writes_csv_and_heatmap(cache, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--dataset", "8gaussians", "--set", "width=16", "--set", "depth=1", "--set", "noise_dim=4",
            "--batch-size", "32", "--x-axis", "batch_size", "--x-values", "16,32", "--y-axis", "lr",
            "--y-values", "0.001,0.01", "--steps", "3", "--metric", "w2", "--eval-samples", "64",
            "--out", str(out)]
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["cells"] == 4 and summary["cached"] == 0
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 4
    assert {(r["lr"], r["batch_size"]) for r in rows} == {("0.001", "16"), ("0.001", "32"), ("0.01", "16"), ("0.01", "32")}
    assert all(float(r["w2"]) > 0 for r in rows)
    heat = Image.open(out / "heatmap.png")
    assert heat.format == "PNG" and heat.size[0] > 2 * 96 and heat.size[1] > 2 * 96
    assert Image.open(out / "thumbnails.png").size[0] > 2 * 160
    assert json.loads((out / "sweep.json").read_text())["x_values"] == [16, 32]
    assert cli_main(argv) == 0  # second time: every cell from the cache
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["cached"] == 4


def test_cli_sweep_bad_axis_values_exit_2(cache, tmp_path, capsys):
    code = cli_main(["sweep", "--x-axis", "K", "--x-values", "1,x", "--y-axis", "tau", "--y-values", "0.1",
                     "--steps", "2", "--out", str(tmp_path / "o")])
    assert code == 2 and "integers" in capsys.readouterr().err


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
    assert cli_main(["train", "--config", str(path), "--out", str(tmp_path / "run"), "--quiet", "--eval-samples", "16"]) == 0
    assert ExperimentConfig.from_json((tmp_path / "run" / "config.json").read_text()) == cfg
    from urllib.parse import parse_qsl

    restored, notices = config_from_query(ExperimentConfig(), dict(parse_qsl(config_query(cfg))))
    assert restored == cfg and notices == []


# ---- scenarios ---------------------------------------------------------------------------------------
def test_scenarios_are_valid_and_explained():
    assert {"start_between", "start_far", "start_collapsed", "attraction_only", "tau_too_small", "tau_too_large",
            "tiny_batch"} <= set(SCENARIOS)
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
        trainer = Trainer(SCENARIOS["attraction_only"].config.with_values({**small, "attraction_only": attraction_only}))
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
