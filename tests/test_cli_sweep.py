"""``drift-lab sweep``: outputs (per-cell mean/std CSV, per-seed CSV, heatmap, thumbnails), the verdict line,
local worker processes giving the serial numbers, the cache, and bad arguments."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from drift_core.cli import main as cli_main
from drift_core.config import ExperimentConfig
from drift_core.sweep import SweepResult, SweepSpec, TrialResult
from drift_core.sweep_pictures import cell_thumbnail, heatmap_for, thumbnail_bounds

SMALL = [
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
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def read_rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_sweep_2x2_writes_csv_and_heatmap(cache, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        *SMALL,
        "--x-axis",
        "batch_size",
        "--x-values",
        "16,32",
        "--y-axis",
        "lr",
        "--y-values",
        "0.001,0.01",
        "--steps",
        "3",
        "--metric",
        "w2",
        "--eval-samples",
        "64",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(printed[-1])
    assert summary["cells"] == 4 and summary["seeds"] == 1 and summary["cached"] == 0 and summary["workers"] == 1
    assert "one seed per cell" in printed[-2]  # the verdict: one seed cannot tell noise from an effect
    rows = read_rows(out / "sweep.csv")
    assert len(rows) == 4
    assert {(r["lr"], r["batch_size"]) for r in rows} == {
        ("0.001", "16"),
        ("0.001", "32"),
        ("0.01", "16"),
        ("0.01", "32"),
    }
    assert all(float(r["w2_mean"]) > 0 and r["w2_std"] == "nan" and r["seeds"] == "1" for r in rows)
    assert len(read_rows(out / "trials.csv")) == 4
    heat = Image.open(out / "heatmap.png")
    assert heat.format == "PNG" and heat.size[0] > 2 * 96 and heat.size[1] > 2 * 96
    assert Image.open(out / "thumbnails.png").size[0] > 2 * 160
    assert json.loads((out / "sweep.json").read_text())["x_values"] == [16, 32]
    assert cli_main(argv) == 0  # second time: every trial from the cache
    assert last_json(capsys)["cached"] == 4


def test_cli_sweep_seeds_on_two_workers_equal_one_worker(cache, tmp_path, capsys):
    """--seeds 0,1 on two local worker processes writes exactly the numbers of --workers 1 (in this
    process): per seed, and the mean and std per cell."""
    argv = [
        "sweep",
        *SMALL,
        "--x-axis",
        "K",
        "--x-values",
        "0,1",
        "--y-axis",
        "tau",
        "--y-values",
        "0.05",
        "--steps",
        "5",
        "--seeds",
        "0,1",
        "--eval-samples",
        "64",
        "--particles",
        "16",
        "--no-cache",
    ]
    assert cli_main([*argv, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    two = last_json(capsys)
    assert cli_main([*argv, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert two["seeds"] == 2 and two["trials"] == 4 and two["workers"] == 2
    for name in ("sweep.csv", "trials.csv"):
        a, b = read_rows(tmp_path / "two" / name), read_rows(tmp_path / "one" / name)
        for row in a + b:
            row.pop("train_s")
        assert a == b
    trials = read_rows(tmp_path / "one" / "trials.csv")
    cells = read_rows(tmp_path / "one" / "sweep.csv")
    assert [t["seed"] for t in trials] == ["0", "1", "0", "1"]
    first = [float(t["energy"]) for t in trials[:2]]
    assert float(cells[0]["energy_mean"]) == pytest.approx(np.mean(first))
    assert float(cells[0]["energy_std"]) == pytest.approx(np.std(first, ddof=1))
    assert not cache.exists()  # --no-cache writes nothing


def test_cli_sweep_bad_arguments_exit_2(cache, tmp_path, capsys):
    base = [
        "sweep",
        "--x-axis",
        "K",
        "--x-values",
        "0,1",
        "--y-axis",
        "tau",
        "--y-values",
        "0.1",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "o"),
    ]
    assert (
        cli_main(
            [
                "sweep",
                "--x-axis",
                "K",
                "--x-values",
                "1,x",
                "--y-axis",
                "tau",
                "--y-values",
                "0.1",
                "--steps",
                "2",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "integers" in capsys.readouterr().err
    for flags, message in (
        (["--seeds", "0,x"], "seeds must be non-negative integers"),
        (["--workers", "0"], "at least 1"),
        (["--workers", "2", "--cluster", "tcp://127.0.0.1:1"], "not allowed with"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            cli_main([*base, *flags])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_heatmap_png_shows_mean_and_spread_and_thumbnail_labels_stay_off_the_points():
    spec = SweepSpec(
        ExperimentConfig().with_values({"dataset": "8gaussians"}),
        "K",
        (0, 1),
        "tau",
        (0.05, 0.2),
        steps=1,
        seeds=(0, 1, 2),
    )
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(64, 2))
    trials = {
        (i, j, s): TrialResult(
            {"energy": float(rng.uniform(0.01, 0.02))}, reference[:32].astype(np.float32), 0.0, False, 1
        )
        for i, j, s in spec.trials()
    }
    result = SweepResult(spec, trials, reference)
    one_seed = SweepResult(
        SweepSpec(spec.base, "K", (0, 1), "tau", (0.05, 0.2), steps=1),
        {(i, j, 0): trials[(i, j, 0)] for i, j in spec.cells()},
        reference,
    )
    wide, narrow = heatmap_for(result, "energy"), heatmap_for(one_seed, "energy")
    assert wide.size[0] > 1.9 * narrow.size[0]  # mean and spread side by side; one seed: the mean alone
    # the thumbnail's label sits in a white band above the plot: the plot itself is the unlabelled picture
    labelled, bare = cell_thumbnail(result, 0, 1, size=120), cell_thumbnail(result, 0, 1, size=120, label=False)
    assert labelled.size[0] == bare.size[0] == 120 and labelled.size[1] > bare.size[1]
    band = labelled.size[1] - bare.size[1]
    assert np.array_equal(np.asarray(labelled)[band:], np.asarray(bare))
    assert (np.asarray(labelled)[:band] < 128).any()  # text in the band
    assert thumbnail_bounds(result)[1] > reference[:, 0].max()
