"""The sweep engine (drift_core.sweep): grid and seeds, mean and spread, the verdict, the cache (shared by
workers, atomic, unreadable entries recomputed), cancel, the worker pool, and a real two-worker Dask
cluster giving the serial numbers."""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
import threading
import time
import types
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drift_core import sweep as sweep_mod
from drift_core.cli import main as cli_main
from drift_core.config import ConfigError, ExperimentConfig
from drift_core.metrics import energy_distance
from drift_core.runtime import stream
from drift_core.sweep import SweepJob, SweepResult, SweepSpec, TrialResult, compute_trial, parse_seeds, run_sweep
from drift_core.train import Trainer

TINY = ExperimentConfig().with_values(
    {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 32, "seed": 3}
)


def tiny_spec(**kw) -> SweepSpec:
    args = dict(
        base=TINY,
        x_axis="K",
        x_values=(0, 1),
        y_axis="tau",
        y_values=(0.05, 0.2),
        steps=4,
        eval_samples=64,
        particles=16,
    )
    args.update(kw)
    return SweepSpec(**args)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def assert_same_trials(a: SweepResult, b: SweepResult) -> None:
    """Two sweep results hold the same numbers, trial by trial, exactly (not the wall times)."""
    assert a.spec == b.spec
    np.testing.assert_array_equal(a.reference, b.reference)
    assert a.trials.keys() == b.trials.keys()
    for key, x in a.trials.items():
        y = b.trials[key]
        assert x.metrics.keys() == y.metrics.keys()
        for name in x.metrics:
            assert x.metrics[name] == y.metrics[name] or (
                math.isnan(x.metrics[name]) and math.isnan(y.metrics[name])
            ), (key, name)
        np.testing.assert_array_equal(x.particles, y.particles)
        assert (x.diverged, x.steps_done) == (y.diverged, y.steps_done)


# ---- the grid, seeds and statistics --------------------------------------------------------------
def test_sweep_grid_matches_independent_runs_and_cache_is_reused(cache, monkeypatch):
    spec = tiny_spec()
    fractions = []
    result = run_sweep(spec, progress=lambda f, m: fractions.append(f))
    assert result.complete and not result.cancelled and result.cached_trials == 0
    energy = result.mean("energy")
    assert energy.shape == (2, 2) and np.isfinite(energy).all()
    assert np.isnan(result.std("energy")).all()  # one seed: no spread
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # cells: rows = tau, cols = K; K = 0 is the baseline
    assert spec.trial_config(0, 0).drift.method == "baseline" and spec.trial_config(1, 1).drift.K == 1
    assert spec.trial_config(1, 0).drift.tau == 0.2 and spec.trial_config(1, 0).train.steps == 4
    assert spec.seeds == (3,)  # the base configuration's seed
    # one cell recomputed independently: same seed, same steps, metric from scratch
    cfg = spec.trial_config(1, 1)
    trainer = Trainer(cfg)
    trainer.run(4)
    # the app's and the CLI's evaluation convention: fixed evaluation noise vs a fixed reference sample
    noise = torch.randn(64, cfg.model.noise_dim, generator=stream(cfg.train.seed, "evaluation"))
    reference = trainer.sampler(64, generator=stream(cfg.train.seed, "reference"))
    with torch.no_grad():
        generated = trainer.model.eval()(noise)
    assert energy[1, 1] == pytest.approx(energy_distance(generated, reference), rel=1e-6)
    assert result.trial(1, 1).particles.shape == (16, 2)
    assert len(list(cache.glob("*.npz"))) == 4
    # a repeated sweep never trains: every trial comes from the cache, with identical numbers
    monkeypatch.setattr(sweep_mod, "Trainer", lambda *a, **k: pytest.fail("a cached trial was retrained"))
    again = run_sweep(spec)
    assert again.cached_trials == 4
    assert_same_trials(again, result)


def test_seeds_give_mean_and_sample_std_of_independent_single_seed_sweeps(tmp_path):
    spec = tiny_spec(seeds=(5, 0, 5, 7))
    assert spec.seeds == (5, 0, 7) and len(spec.trials()) == 12
    result = run_sweep(spec, directory=tmp_path / "all")
    per_seed = [run_sweep(tiny_spec(seeds=(s,)), directory=tmp_path / f"seed{s}") for s in (5, 0, 7)]
    for i, j in spec.cells():
        values = [r.trial(i, j).metrics["energy"] for r in per_seed]
        assert len(set(values)) == 3  # the seeds really differ
        assert [result.trial(i, j, s).metrics["energy"] for s in range(3)] == values
        assert result.mean("energy")[i, j] == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert result.std("energy")[i, j] == pytest.approx(statistics.stdev(values), rel=1e-9)
    rows = result.rows()
    assert len(rows) == 4 and {r["seeds"] for r in rows} == {3}
    assert rows[3]["energy_mean"] == result.mean("energy")[1, 1] and rows[3]["energy_std"] == result.std("energy")[1, 1]
    trial_rows = result.trial_rows()
    assert [r["seed"] for r in trial_rows[:3]] == [5, 0, 7] and len(trial_rows) == 12


def fake_result(values: np.ndarray, lower: bool = True) -> SweepResult:
    """A result with the given energies [rows, cols, seeds] (NaN: trial not run), no training."""
    rows, cols, seeds = values.shape
    spec = SweepSpec(
        TINY,
        "K",
        tuple(range(cols)),
        "tau",
        tuple(0.01 * (i + 1) for i in range(rows)),
        steps=1,
        seeds=tuple(range(seeds)),
    )
    trials = {
        (i, j, s): TrialResult(
            {"energy": float(values[i, j, s]), "modes": float(values[i, j, s])},
            np.zeros((1, 2), np.float32),
            0.0,
            False,
            1,
        )
        for i in range(rows)
        for j in range(cols)
        for s in range(seeds)
        if np.isfinite(values[i, j, s])
    }
    return SweepResult(spec, trials, np.zeros((1, 2)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 4), st.data())
def test_not_separated_cells_are_those_whose_mean_std_intervals_overlap_the_best(rows, cols, seeds, data):
    numbers = data.draw(
        st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=rows * cols * seeds, max_size=rows * cols * seeds)
    )
    values = np.array(numbers).reshape(rows, cols, seeds)
    result = fake_result(values)
    cells = [(i, j) for i in range(rows) for j in range(cols)]
    stats = {c: (statistics.fmean(values[c].tolist()), statistics.stdev(values[c].tolist())) for c in cells}
    for metric, lower in (("energy", True), ("modes", False)):
        best = result.best_cell(metric)
        assert stats[best][0] == pytest.approx((min if lower else max)(m for m, _ in stats.values()), abs=1e-12)
        margins = {c: abs(stats[c][0] - stats[best][0]) - (stats[c][1] + stats[best][1]) for c in cells if c != best}
        assume(all(abs(m) > 1e-9 for m in margins.values()))  # not on the boundary, where rounding decides
        expected = [c for c in cells if c != best and margins[c] <= 0]
        assert result.not_separated_from_best(metric) == expected
        verdict = result.verdict(metric)
        assert ("not separated" in verdict) == bool(expected)
        assert f"mean of {seeds} seeds" in verdict


def test_verdict_says_one_seed_cannot_tell_and_names_a_clear_winner():
    one = fake_result(np.array([[[0.010], [0.012]]]))
    assert one.not_separated_from_best("energy") == []
    assert "one seed" in one.verdict("energy") and "tau=0.01, K=0" in one.verdict("energy")
    clear = fake_result(np.array([[[0.10, 0.11, 0.12], [0.50, 0.52, 0.51]]]))
    assert "separated from every other cell" in clear.verdict("energy")
    tie = fake_result(np.array([[[0.10, 0.14, 0.12], [0.11, 0.15, 0.13]]]))
    assert tie.not_separated_from_best("energy") == [(0, 1)]
    assert "not separated from 1 other cell(s)" in tie.verdict("energy")
    partial = fake_result(np.array([[[0.1, np.nan], [0.2, 0.3]]]))
    assert partial.seeds_done().tolist() == [[1, 2]] and np.isnan(partial.std("energy")[0, 0])


def test_sweep_keys_depend_on_what_matters():
    a, b = tiny_spec(), tiny_spec()
    assert a.key() == b.key() and a.trial_key(0, 1) == b.trial_key(0, 1)
    assert a.trial_key(0, 0) != a.trial_key(0, 1)
    assert tiny_spec(steps=5).key() != a.key()
    assert tiny_spec(base=TINY.with_values({"seed": 4})).key() != a.key()
    seeded = tiny_spec(seeds=(3, 4))
    assert seeded.trial_key(0, 1, 0) == a.trial_key(0, 1)  # seed 3 is the base's seed: the same trial
    assert seeded.trial_key(0, 1, 1) == tiny_spec(base=TINY.with_values({"seed": 4})).trial_key(0, 1)
    assert seeded.key() != a.key()


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
    for bad in ("1,x", "-1", "1.5", ""):
        with pytest.raises(ConfigError, match="seeds"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="at most 16 seeds"):
        parse_seeds(",".join(str(s) for s in range(17)))
    assert parse_seeds("2, 0,2,1") == (2, 0, 1)


# ---- the cache ---------------------------------------------------------------------------------------
def test_unreadable_cache_entry_is_recomputed_with_a_warning(tmp_path):
    spec = tiny_spec(x_values=(0,), y_values=(0.05,))
    first = compute_trial(spec, 0, 0, directory=tmp_path)
    path = tmp_path / f"{spec.trial_key(0, 0)}.npz"
    for damage in (b"not a zip file", path.read_bytes()[:50]):
        path.write_bytes(damage)
        with pytest.warns(RuntimeWarning, match="could not be read"):
            again = compute_trial(spec, 0, 0, directory=tmp_path)
        assert not again.from_cache and again.metrics == first.metrics
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert compute_trial(spec, 0, 0, directory=tmp_path).from_cache  # replaced by a good entry
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_concurrent_writers_of_one_entry_never_show_a_reader_half_a_file(tmp_path):
    """Several writers replace the same entry over and over while a reader keeps loading it: the reader
    always gets a whole entry (never a warning), and no temporary file is left."""
    path = tmp_path / "entry.npz"
    trial = TrialResult(
        {"energy": 0.5}, np.random.default_rng(0).normal(size=(4096, 2)).astype(np.float32), 1.0, False, 3
    )
    sweep_mod._save_trial(path, trial)
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            sweep_mod._save_trial(path, trial)

    writers = [threading.Thread(target=write) for _ in range(3)]
    for w in writers:
        w.start()
    loads = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                loaded = sweep_mod._load_trial(path)
                assert loaded is not None and loaded.metrics == {"energy": 0.5}
                np.testing.assert_array_equal(loaded.particles, trial.particles)
                loads += 1
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert loads > 5
    assert [p.name for p in tmp_path.iterdir()] == ["entry.npz"]


# ---- cancel and the job ----------------------------------------------------------------------------
def test_sweep_cancel_keeps_finished_trials(cache):
    cancel = threading.Event()

    def progress(fraction, message):
        if "cell 2/4" in message:
            cancel.set()

    result = run_sweep(tiny_spec(), progress=progress, cancel=cancel)
    assert result.cancelled and not result.complete
    assert result.trial(0, 0) is not None and result.trial(1, 1) is None
    assert np.isnan(result.mean("energy")[1, 1])
    assert len(list(cache.glob("*.npz"))) == 1  # only the finished trial was cached


def test_sweep_job_runs_in_background_and_cancels(cache):
    job = SweepJob(tiny_spec(steps=2000)).start()
    job.cancel()
    assert job.wait(timeout=60)
    assert job.error is None and job.result.cancelled and job.message == "cancelled"
    done = SweepJob(tiny_spec()).start()
    assert done.wait(timeout=120) and done.result.complete and done.fraction == pytest.approx(1.0)


def test_sweep_job_on_two_worker_processes_equals_run_sweep_here(cache, tmp_path, monkeypatch):
    """The job's own pool (two processes, one torch thread each) gives exactly the numbers of run_sweep in
    this process, trial by trial; the workers write the cache; a repeated job takes every trial from the
    cache without starting a worker."""
    spec = tiny_spec(steps=12, base=TINY.with_values({"batch_size": 64}), seeds=(3, 4))
    job = SweepJob(spec, directory=tmp_path / "job", workers=2).start()
    fractions = []
    while not job.done and len(fractions) < 100_000:
        fractions.append(job.fraction)
        assert isinstance(job.message, str)
        job.wait(timeout=0.05)
    assert job.wait(timeout=120) and job.error is None, job.error
    assert job.result.complete and not job.result.cancelled and job.result.cached_trials == 0
    assert job.fraction == pytest.approx(1.0) and job.message == "done"
    assert fractions == sorted(fractions)
    assert len(list((tmp_path / "job").glob("*.npz"))) == 8
    assert not list((tmp_path / "job").glob("*.tmp*"))  # temporary files were renamed into place
    here = run_sweep(spec, directory=tmp_path / "here")
    assert_same_trials(job.result, here)
    monkeypatch.setattr(sweep_mod, "ProcessPoolExecutor", lambda *a, **k: pytest.fail("a pool was started"))
    again = SweepJob(spec, directory=tmp_path / "job", workers=2).start()
    assert again.wait(timeout=60) and again.result.cached_trials == 8
    assert_same_trials(again.result, here)


def test_workers_do_not_run_the_parents_main_script(tmp_path, monkeypatch):
    """In the app, ``__main__`` is the Streamlit page script that started the sweep (Streamlit's script
    runner puts it there); multiprocessing would run it again in every worker. They must not."""
    marker = tmp_path / "main-ran"
    script = tmp_path / "page_script.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('ran')\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    job = SweepJob(tiny_spec(x_values=(0,), y_values=(0.05, 0.2), steps=2), use_cache=False, workers=2).start()
    assert job.wait(timeout=120) and job.error is None and job.result.complete
    assert not marker.exists()
    assert sys.modules["__main__"] is page  # put back after the workers started


def test_sweep_worker_is_another_process_with_one_torch_thread():
    with ProcessPoolExecutor(
        1, mp_context=sweep_mod._mp_context(), initializer=sweep_mod._worker_init, initargs=(None, None)
    ) as pool:
        assert pool.submit(os.getpid).result(timeout=120) != os.getpid()
        assert pool.submit(torch.get_num_threads).result(timeout=60) == 1


def test_a_trial_runs_with_one_torch_thread_and_restores_the_callers(tmp_path):
    before = torch.get_num_threads()
    seen = []
    spec = tiny_spec(x_values=(0,), y_values=(0.05,))
    compute_trial(spec, 0, 0, use_cache=False, on_step=lambda step: seen.append(torch.get_num_threads()))
    assert set(seen) == {sweep_mod.TRIAL_TORCH_THREADS} and torch.get_num_threads() == before


def test_sweep_job_cancel_mid_sweep_keeps_finished_trials(cache):
    job = SweepJob(tiny_spec(steps=1500)).start()
    deadline = time.monotonic() + 240
    while job.fraction < 0.3 and not job.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not job.done, "the sweep finished before it could be cancelled"
    assert job.message.startswith("cell 2/4")
    stop = time.monotonic()
    job.cancel()
    assert job.wait(timeout=60) and job.error is None
    assert time.monotonic() - stop < 30  # the running trial stopped at a step, not at its end
    result = job.result
    assert result.cancelled and not result.complete and job.message == "cancelled"
    assert result.trial(0, 0) is not None and result.trial(1, 1) is None
    assert len(list(cache.glob("*.npz"))) == 1


def test_sweep_job_on_another_executor_and_errors_as_messages(cache, monkeypatch):
    """Any concurrent.futures executor runs the job's trials (threads here); an error in a trial
    reaches the job as a message."""
    spec = tiny_spec()
    with ThreadPoolExecutor(2) as pool:
        job = SweepJob(spec, executor=pool).start()
        assert job.wait(timeout=120) and job.error is None and job.result.complete
        assert_same_trials(job.result, run_sweep(spec, use_cache=False))

        def boom(*args, **kwargs):
            raise RuntimeError("the trial exploded")

        monkeypatch.setattr(sweep_mod, "sweep_trial_task", boom)
        failed = SweepJob(spec, executor=pool, use_cache=False).start()
        assert failed.wait(timeout=60)
        assert failed.result is None and failed.error == "RuntimeError: the trial exploded"
        assert failed.done and failed.message == "failed"


# ---- a real Dask cluster -------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_worker_dask_cluster_gives_the_serial_numbers_and_shares_the_cache(tmp_path):
    """A local Dask cluster (two worker processes, one thread each) runs a 2 x 2 sweep over two seeds:
    the trials are spread over both workers, the numbers equal the serial run's exactly, both workers
    write one cache folder (every entry readable), and the command line's --cluster gives the same CSV."""
    import distributed  # the 'cluster' extra: an optional dependency of the package, in requirements.txt

    spec = tiny_spec(steps=6, seeds=(3, 4))
    serial = run_sweep(spec, use_cache=False)
    folder = tmp_path / "shared"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as tasks:
            job = SweepJob(spec, executor=client.get_executor(pure=False), directory=folder).start()
            assert job.wait(timeout=300) and job.error is None, job.error
        assert_same_trials(job.result, serial)
        workers = {t["worker"] for t in tasks.data if t["key"].startswith("sweep_trial_task")}
        assert len(workers) == 2, workers
        entries = sorted(folder.glob("*.npz"))
        assert len(entries) == 8 and not list(folder.glob("*.tmp*"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert all(sweep_mod._load_trial(e) is not None for e in entries)
        argv = [
            "sweep",
            "--dataset",
            "8gaussians",
            "--set",
            "width=16",
            "--set",
            "depth=1",
            "--set",
            "noise_dim=4",
            "--batch-size",
            "32",
            "--seed",
            "3",
            "--x-axis",
            "K",
            "--x-values",
            "0,1",
            "--y-axis",
            "tau",
            "--y-values",
            "0.05,0.2",
            "--steps",
            "6",
            "--seeds",
            "3,4",
            "--eval-samples",
            "64",
            "--particles",
            "16",
            "--no-cache",
            "--quiet",
        ]
        assert cli_main([*argv, "--cluster", cluster.scheduler_address, "--out", str(tmp_path / "cluster")]) == 0
    assert cli_main([*argv, "--workers", "1", "--out", str(tmp_path / "serial")]) == 0
    for name in ("sweep.csv", "trials.csv"):
        on_cluster, here = (list(csv.DictReader(open(tmp_path / d / name))) for d in ("cluster", "serial"))
        for row in on_cluster + here:
            row.pop("train_s")
        assert on_cluster == here and len(here) == (4 if name == "sweep.csv" else 8)
