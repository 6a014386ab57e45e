"""Public API hygiene and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import drift_core
from tests.conftest import ROOT


def test_all_names_exist():
    for name in drift_core.__all__:
        assert hasattr(drift_core, name), name


def test_drift_core_imports_no_ui_libraries():
    code = (
        "import sys, drift_core, drift_core.cli, drift_core.metrics, drift_core.render; "
        "import pkgutil, importlib; [importlib.import_module(m.name) for m in pkgutil.walk_packages(drift_core.__path__, 'drift_core.') if not m.name.endswith('__main__')]; "
        "bad=[m for m in ('streamlit','plotly','altair') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "drift_core", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, **kw
    )


def test_cli_train_writes_outputs_and_resumes(tmp_path):
    out = tmp_path / "run"
    r = _cli(
        "train",
        "--dataset",
        "moons",
        "--steps",
        "40",
        "--batch-size",
        "128",
        "--set",
        "width=32",
        "--eval-every",
        "20",
        "--out",
        str(out),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "scatter.png", "summary.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["data"]["dataset"] == "moons"
    assert len((out / "metrics.csv").read_text().splitlines()) == 41
    r = _cli("train", "--resume", str(out / "checkpoint.pt"), "--steps", "60", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "summary.json").read_text())["step"] == 60
    assert len((out / "metrics.csv").read_text().splitlines()) == 61


def test_cli_bad_arguments_exit_nonzero_with_message(tmp_path):
    cases = [
        ("train", "--K", "abc"),
        ("train", "--dataset", "nope"),
        ("train", "--resume", str(tmp_path / "missing.pt")),
        ("train", "--dataset", "custom"),
        ("compare", "--seeds", "a,b"),
    ]
    for args in cases:
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("error:") and "Traceback" not in r.stderr, r.stderr
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("1,2\n3\n")
    r = _cli("train", "--points", str(bad_csv), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "at least 2 columns" in r.stderr


def test_cli_custom_points(tmp_path):
    pts = tmp_path / "pts.csv"
    pts.write_text("x,y\n" + "\n".join(f"{i / 50 - 1},{(i % 7) / 7}" for i in range(100)))
    r = _cli(
        "train", "--points", str(pts), "--steps", "10", "--batch-size", "64", "--out", str(tmp_path / "o"), "--quiet"
    )
    assert r.returncode == 0, r.stderr


def test_cli_compare_prints_table(tmp_path):
    r = _cli(
        "compare",
        "--dataset",
        "8gaussians",
        "--steps",
        "20",
        "--batch-size",
        "64",
        "--set",
        "width=32",
        "--seeds",
        "0,1",
        "--lookahead-K",
        "1",
        "--eval-at",
        "10,20",
        "--out",
        str(tmp_path / "rows.csv"),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    for method in ("baseline", "baseline 2x lr", "lookahead K=1"):
        assert method in r.stdout
    assert "+-" in r.stdout and "wall-clock" in r.stdout
    rows = (tmp_path / "rows.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 3
