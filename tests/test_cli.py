"""The command line (drift_core.cli): argparse-typed arguments with one-line errors, atomic outputs,
a real ``train`` process killed mid-write that resumes from what it left, ``train`` and ``compare`` end to
end, bad point files, server limits, untrusted checkpoints and out-of-memory reports."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from drift_core import cli
from drift_core.checkpoint import save_checkpoint
from drift_core.export import read_csv
from drift_core.particles import ParticleTrainer, load_arm
from drift_core.train import Trainer
from tests.conftest import ROOT
from tests.faults_support import SMALL, _oom_above

TINY = ["--dataset", "moons", "--batch-size", "32", "--set", "width=16", "--set", "depth=1", "--set", "noise_dim=4"]


def _main(argv, capsys) -> tuple[int, str]:
    """cli.main's exit status and stderr; argparse's own errors exit through SystemExit."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["compare", "--seeds", "a,b"], "argument --seeds: expected comma-separated integers, got 'a,b'"),
        (["compare", "--seeds", ","], "argument --seeds: expected at least one integer"),
        (["compare", "--wall-times", "1,nan"], "argument --wall-times: expected at least one finite number"),
        (["compare", "--lookahead-K", "0", "--steps", "4"], "--lookahead-K values must be >= 1"),
        (["compare", "--seeds", "1" * 30, "--steps", "4"], "seed must be between 0 and 2,147,483,647"),
        (["compare", "--eval-at", "99", "--steps", "4"], "--eval-at names no step from 1 to --steps 4"),
        (["train", "--K", "abc"], "argument --K: invalid int value: 'abc'"),
        (["train", "--tau", "nan"], "tau must be a finite number"),
        (["train", "--seed", "9" * 25], "seed must be between 0 and 2,147,483,647"),
        (["train", "--set", "width"], "argument --set: expected NAME=VALUE, got 'width'"),
        (["train", "--set", "depth=" + "9" * 30], "depth must be between 1 and 256"),
        (["train", "--method", "fancy"], "argument --method: invalid choice: 'fancy'"),
        (["train", "--preset", "nope"], "argument --preset: invalid choice: 'nope'"),
        (["train", "--eval-samples", "1000000000"], "argument --eval-samples: expected an integer from 2 to 16,384"),
        (["train", "--checkpoint-every", "-1"], "argument --checkpoint-every: expected an integer from 0 up"),
        (["train", "--steps", "-5"], "steps must be between 0 and"),
        (["train-images", "--fid-at", "x"], "argument --fid-at: expected comma-separated integers"),
        (["train-images", "--seed", "1" * 22], "seed must be between 0 and 2,147,483,647"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, words, capsys, tmp_path):
    code, err = _main([*argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and err.startswith("error:") and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_later_flags_win_and_set_reaches_every_field(tmp_path, capsys):
    code, err = _main(
        [
            "train",
            *TINY,
            "--tau",
            "0.2",
            "--set",
            "tau=0.3",
            "--steps",
            "2",
            "--lr",
            "0.002",
            "--out",
            str(tmp_path),
            "--quiet",
            "--eval-samples",
            "64",
        ],
        capsys,
    )
    assert code == 0, err
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["drift"]["tau"] == 0.3 and saved["train"]["lr"] == 0.002 and saved["model"]["width"] == 16


def test_unusable_config_and_output_paths_are_one_line_errors(tmp_path, capsys):
    binary = tmp_path / "config.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000)
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    cases = [
        (["train", "--config", str(binary), "--out", str(tmp_path / "o")], "not UTF-8"),
        (["train", "--config", str(nested), "--out", str(tmp_path / "o")], "not valid JSON"),
        (["train", "--config", str(tmp_path), "--out", str(tmp_path / "o")], "no such config file"),
        (["train", *TINY, "--steps", "1", "--out", str(a_file)], "is a file, not a folder"),
        (["train", "--resume", str(binary), "--out", str(tmp_path / "o")], "cannot resume"),
    ]
    for argv, words in cases:
        code, err = _main(argv, capsys)
        assert code == 2 and err.startswith("error:") and words in err and err.count("\n") == 1, (argv, err)


def test_zero_steps_writes_a_complete_run(tmp_path, capsys):
    code, err = _main(
        ["train", *TINY, "--steps", "0", "--out", str(tmp_path), "--quiet", "--eval-samples", "64"], capsys
    )
    assert code == 0, err
    assert read_csv(tmp_path / "metrics.csv") == [] and json.loads((tmp_path / "summary.json").read_text())["step"] == 0
    assert Trainer.load(tmp_path / "checkpoint.pt").step_count == 0
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint.pt",
        "config.json",
        "metrics.csv",
        "scatter.png",
        "summary.json",
    ]


# ---- kill -9 mid-write, then resume ----------------------------------------------------------------
def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "drift_core", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_while_writing(process: subprocess.Popen, out, beyond: int, after_s: float) -> None:
    """SIGKILL ``process`` ``after_s`` seconds after its checkpoint first shows a step beyond ``beyond``
    (it writes a checkpoint and metrics.csv every step, so the kill lands in or between writes)."""
    deadline = time.monotonic() + 120
    while (_step_or_none(out) or 0) <= beyond:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no new checkpoint within 120 s"
        time.sleep(0.05)
    time.sleep(after_s)
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def _step_or_none(out) -> int | None:
    """The step of the checkpoint under its real name, None while there is none."""
    return Trainer.load(out / "checkpoint.pt").step_count if (out / "checkpoint.pt").exists() else None


def _assert_complete(out) -> int:
    """Every file under its real name is complete: the checkpoint loads, metrics.csv is whole rows of
    consecutive steps reaching at least the checkpoint's step, config.json parses. Returns the step."""
    step = Trainer.load(out / "checkpoint.pt").step_count
    text = (out / "metrics.csv").read_text()
    assert text.endswith("\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert len({len(row) for row in rows}) == 1, "a row of another width: a torn write"
    steps = [int(row["step"]) for row in read_csv(out / "metrics.csv")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= step
    json.loads((out / "config.json").read_text())
    return step


@pytest.mark.slow
def test_a_killed_run_leaves_complete_files_and_resumes_exactly(tmp_path):
    out = tmp_path / "run"
    common = ["--checkpoint-every", "1", "--eval-every", "7", "--eval-samples", "64", "--quiet", "--out", str(out)]
    _kill_while_writing(_start("train", *TINY, "--steps", "1000000", *common), out, 0, 1.3)
    first = _assert_complete(out)
    resumed = _start("train", "--resume", str(out / "checkpoint.pt"), "--steps", "1000000", *common)
    _kill_while_writing(resumed, out, first, 0.7)  # killed again while resuming
    second = _assert_complete(out)
    assert second > first
    final = second + 5
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "drift_core",
            "train",
            "--resume",
            str(out / "checkpoint.pt"),
            "--steps",
            str(final),
            *common,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert _assert_complete(out) == final
    assert [int(r["step"]) for r in read_csv(out / "metrics.csv")] == list(range(1, final + 1))  # no gap, no repeat
    assert json.loads((out / "summary.json").read_text())["step"] == final
    assert sorted(os.listdir(out)) == ["checkpoint.pt", "config.json", "metrics.csv", "scatter.png", "summary.json"]


# ---- particle mode, dimensions and kernels ---------------------------------------------------------


def test_train_particles_writes_the_same_files_and_resumes(tmp_path, capsys):
    out = tmp_path / "p"
    argv = ["train", *TINY, "--particles", "--steps", "4", "--eval-every", "2", "--eval-samples", "64", "--quiet"]
    code, err = _main([*argv, "--set", "kernel=gaussian", "--set", "tau=0.3", "--out", str(out)], capsys)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["checkpoint.pt", "config.json", "metrics.csv", "scatter.png", "summary.json"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["mode"] == "particles" and saved["drift"]["kernel"] == "gaussian"
    rows = read_csv(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and rows[1]["energy"] and not rows[0]["energy"]
    assert json.loads((out / "summary.json").read_text())["step"] == 4
    arm = load_arm(out / "checkpoint.pt")
    assert isinstance(arm, ParticleTrainer) and arm.particles.shape == (64, 2)
    more = [*argv[:-1], "--steps", "6", "--resume", str(out / "checkpoint.pt"), "--out", str(out), "--quiet"]
    code, err = _main([a for a in more if a != "--particles"], capsys)  # the checkpoint knows its mode
    assert code == 0, err
    assert [int(r["step"]) for r in read_csv(out / "metrics.csv")] == [1, 2, 3, 4, 5, 6]
    code, err = _main(
        ["train", "--resume", str(out / "checkpoint.pt"), "--eval-samples", "128", "--out", str(out)], capsys
    )
    assert code == 2 and "--eval-samples 64" in err
    code, err = _main(
        ["train", "--resume", str(out / "checkpoint.pt"), "--set", "mode=network", "--out", str(out)], capsys
    )
    assert code == 2 and "mode" in err


def test_train_in_d_dimensions_reports_metrics_on_the_plane(tmp_path, capsys):
    code, err = _main(
        ["train", *TINY, "--set", "dimension=8", "--steps", "2", "--eval-samples", "64", "--out", str(tmp_path)],
        capsys,
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"energy", "sliced_w2", "off_plane_rms"} <= set(summary)


def test_compare_particles_has_the_doubled_step_control(tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    code, err = _main(
        ["compare", *TINY, "--particles", "--steps", "2", "--seeds", "0", "--lookahead-K", "1", "--out", str(rows)],
        capsys,
    )
    assert code == 0, err
    methods = {r["method"] for r in read_csv(rows)}
    assert methods == {"baseline", "baseline 2x step", "lookahead K=1"}
    code, err = _main(["compare", *TINY, "--particles", "--steps", "2", "--eval-samples", "64"], capsys)
    assert code == 2 and "particle" in err


# ---- train and compare end to end ----------------------------------------------------------------


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


# ---- bad point files and server limits ------------------------------------------------------------


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"# only a comment\n", "empty"),
        (b"1,2\n3\n", "at least 2 columns"),
        (b"hello,world\nfoo,bar\n", "two numeric columns"),
        (b"1,2\ninf,3\n", "NaN or infinite"),
        (b"1,2\n", "at least 2"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b"1e300,1\n2,3\n", "too large"),
    ],
)
def test_cli_refuses_each_bad_csv_with_a_message(tmp_path, capsys, content, words):
    path = tmp_path / "points.csv"
    path.write_bytes(content)
    code = cli.main(["train", "--points", str(path), "--steps", "1", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and words in err, err
    assert not (tmp_path / "out").exists()  # nothing was written


def test_cli_refuses_configs_beyond_the_server_limits(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DRIFT_MAX_BATCH", "256")
    monkeypatch.setenv("DRIFT_MAX_K", "2")
    code = cli.main(["train", "--batch-size", "512", "--method", "lookahead", "--K", "3", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "limit of 256" in err and "K = 3" in err
    monkeypatch.setenv("DRIFT_MAX_BATCH", "many")
    assert cli.main(["train", "--out", str(tmp_path)]) == 2
    assert "DRIFT_MAX_BATCH must be a positive integer" in capsys.readouterr().err


# ---- untrusted checkpoints -------------------------------------------------------------------


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _cli_subprocess(*args):
    return subprocess.run(
        [sys.executable, "-m", "drift_core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_resume_never_executes_a_malicious_pickle(tmp_path):
    marker = tmp_path / "executed"
    evil_torch = tmp_path / "evil.pt"
    torch.save(
        {"format": "drift-lab-checkpoint", "version": 1, "kind": "toy2d", "x": _Exploit(str(marker))}, evil_torch
    )
    evil_pickle = tmp_path / "evil.pkl"
    evil_pickle.write_bytes(pickle.dumps({"model": _Exploit(str(marker))}))
    r = _cli_subprocess(
        "train", "--resume", str(evil_torch), "--out", str(tmp_path / "out"), "--quiet"
    )  # the real entry point
    assert r.returncode == 2 and r.stderr.startswith("error: cannot resume") and "Traceback" not in r.stderr, r.stderr
    assert "refused" in r.stderr and "Unsupported global: GLOBAL io.open" in r.stderr
    assert not marker.exists()
    for path in (evil_torch, evil_pickle):
        assert cli.main(["train", "--resume", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
        assert not marker.exists()
    assert not (tmp_path / "out").exists()
    pickle.loads(pickle.dumps(_Exploit(str(marker))))  # the payload is real: unpickling it does write the marker
    assert marker.exists()


def test_cli_resume_refuses_bad_checkpoints_with_messages(tmp_path, capsys):
    good = tmp_path / "good.pt"
    Trainer(SMALL.with_values({"dataset": "moons"})).save(good)
    data = good.read_bytes()
    truncated, text, empty = tmp_path / "truncated.pt", tmp_path / "notes.txt", tmp_path / "empty.pt"
    truncated.write_bytes(data[: len(data) // 3])
    text.write_text("not a checkpoint at all\n")
    empty.write_bytes(b"")
    images = tmp_path / "images.pt"
    save_checkpoint(images, Trainer(SMALL).state_dict(), kind="images")
    other_arch = tmp_path / "arch.pt"
    state = Trainer(SMALL).state_dict()
    state["config"]["model"]["width"] = 48
    save_checkpoint(other_arch, state, kind="toy2d")
    cases = {
        truncated: ([], "truncated or not a torch file"),
        text: ([], "not a readable checkpoint"),
        empty: ([], "empty"),
        images: ([], "'images' checkpoint"),
        other_arch: ([], "do not fit"),
        good: (["--dataset", "checkerboard"], "another dataset or architecture: dataset='checkerboard'"),
    }
    for path, (extra, words) in cases.items():
        code = cli.main(["train", "--resume", str(path), *extra, "--out", str(tmp_path / "out"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and words in err, (path.name, err)
    # a live setting is fine on resume and applies to the resumed run
    code = cli.main(
        [
            "train",
            "--resume",
            str(good),
            "--steps",
            "3",
            "--lr",
            "0.002",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--eval-samples",
            "128",
        ]
    )
    assert code == 0, capsys.readouterr().err
    resumed = Trainer.load(tmp_path / "out" / "checkpoint.pt")
    assert resumed.step_count == 3 and resumed.config.train.lr == 0.002 and resumed.config.data.dataset == "moons"


# ---- out of memory ---------------------------------------------------------------------------


def test_cli_reports_out_of_memory_fallback_and_final_failure(tmp_path, capsys, monkeypatch):
    _oom_above(monkeypatch, 100)
    code = cli.main(
        [
            "train",
            "--steps",
            "2",
            "--batch-size",
            "256",
            "--set",
            "width=32",
            "--out",
            str(tmp_path / "a"),
            "--quiet",
            "--eval-samples",
            "128",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "warning: step 1: out of memory at batch size 256" in err
    _oom_above(monkeypatch, 1)
    code = cli.main(
        [
            "train",
            "--steps",
            "2",
            "--batch-size",
            "64",
            "--set",
            "width=32",
            "--out",
            str(tmp_path / "b"),
            "--quiet",
            "--eval-samples",
            "128",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3 and "error: out of memory even at batch size 64" in err and "Traceback" not in err
