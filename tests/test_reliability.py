"""Reliability and security of the engine and CLI: bad uploads, server limits, untrusted checkpoints,
divergence with step-back, out-of-memory fallback, and the bound on live sessions."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from drift_core import cli
from drift_core.checkpoint import CheckpointError, checkpoint_bytes, save_checkpoint
from drift_core.config import ConfigError, ExperimentConfig, model_parameter_count
from drift_core.data.points import MAX_BYTES, PointSetError, load_points
from drift_core.limits import Limits, config_from_query
from drift_core.models import build_generator
from drift_core.run import Run
from drift_core.train import Batch, DivergedError, Trainer
from tests.conftest import ROOT
from ui.sessions import SessionLimitError, SessionRegistry

SMALL = ExperimentConfig().with_values({"batch_size": 128, "width": 32, "depth": 2, "steps": 20})


# ---- uploaded point sets ---------------------------------------------------------------------
def test_upload_row_limit_comes_from_the_environment(monkeypatch, tmp_path, capsys):
    rows = "\n".join(f"{i},{i % 3}" for i in range(50))
    assert load_points(rows).shape == (50, 2)
    monkeypatch.setenv("DRIFT_MAX_UPLOAD_POINTS", "40")
    limit = Limits.from_env().max_upload_points
    with pytest.raises(PointSetError, match="more than 40 rows"):
        load_points(rows, max_points=limit)
    with pytest.raises(PointSetError, match="limit 40"):
        load_points(torch.zeros(41, 2), max_points=limit)
    (tmp_path / "p.csv").write_text(rows)  # the CLI applies the server's limit
    assert (
        cli.main(
            [
                "train",
                "--points",
                str(tmp_path / "p.csv"),
                "--set",
                "dataset=custom",
                "--steps",
                "1",
                "--quiet",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert "more than 40 rows" in capsys.readouterr().err


def test_huge_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge.csv"
    with open(big, "wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: nothing is written, and nothing may be read
    with pytest.raises(PointSetError, match="too large"):
        load_points(big)
    with pytest.raises(PointSetError, match="too large"):
        load_points(b"1,2\n" * (MAX_BYTES // 4 + 1))


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


def test_arrays_of_the_wrong_kind_are_refused():
    for bad in (torch.zeros(3), [["a", "b"], ["c", "d"]], torch.full((3, 2), float("nan"))):
        with pytest.raises(PointSetError):
            load_points(bad)


# ---- server limits ---------------------------------------------------------------------------
def test_limits_refuse_oversized_models_and_clamp_steps_per_frame():
    limits = Limits.from_env({"DRIFT_MAX_MODEL_PARAMS": "100000", "DRIFT_MAX_STEPS_PER_FRAME": "5"})
    big = ExperimentConfig().with_values({"width": 512, "depth": 3})
    assert model_parameter_count(big.model) == sum(p.numel() for p in build_generator(big.model, seed=0).parameters())
    with pytest.raises(ConfigError, match="parameters, above this server's limit of 100,000"):
        limits.check(big)
    limits.check(ExperimentConfig().with_values({"width": 128}))  # 3 x 128 fits 100k parameters
    assert limits.steps_per_frame(3) == (3, "")
    steps, notice = limits.steps_per_frame(50)
    assert steps == 5 and "1..5" in notice
    assert limits.steps_per_frame(0)[0] == 1


def test_query_params_beyond_the_model_limit_keep_the_current_value():
    limits = Limits(max_model_params=100_000)
    base = ExperimentConfig().with_values({"width": 128})  # 3 x 128: fits this limit
    cfg, notices = config_from_query(base, {"width": "4096", "depth": "16", "K": "-3", "lr": "1e9"}, limits)
    assert cfg.model.width == 128 and cfg.model.depth == 3  # refused: no clamp fits the limit
    assert cfg.drift.K == 0 and cfg.train.lr == 1.0  # clamped into range
    assert len(notices) == 4 and all(("ignored" in n) or ("using" in n) for n in notices), notices
    limits.check(cfg)
    tight = Limits(max_batch=128, max_model_params=20_000)  # even the defaults are too big for this server
    cfg, notices = config_from_query(base, {"depth": "2"}, tight)
    assert cfg.train.batch_size == 128 and cfg.model.depth == 2 and len(notices) == 2
    tight.check(cfg)
    cfg, notices = config_from_query(base, {}, tight)
    assert cfg.model.width == 64 and "using 64" in notices[-1]
    tight.check(cfg)


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


def test_checkpoints_with_malformed_or_oversized_contents_are_refused(tmp_path):
    base = Trainer(SMALL).state_dict()
    cases = {
        "no config": ({**base, "config": [1, 2]}, "no configuration"),
        "bad config": ({**base, "config": {"model": {"width": "wide"}}}, "configuration is not valid"),
        "missing weights": ({k: v for k, v in base.items() if k != "model"}, "has no weights"),
        "bad rng": ({**base, "data_rng": "seed"}, "malformed"),
        "nan points": (
            {
                **base,
                "config": {**base["config"], "data": {"dataset": "custom"}},
                "points": torch.tensor([[0.0, float("nan")], [1.0, 1.0]]),
            },
            "point set is not usable",
        ),
        "wrong-shape points": (
            {**base, "config": {**base["config"], "data": {"dataset": "custom"}}, "points": torch.zeros(4, 3)},
            "point set is not usable",
        ),
    }
    for name, (state, words) in cases.items():
        path = tmp_path / f"{name}.pt"
        save_checkpoint(path, state, kind="toy2d")
        with pytest.raises(CheckpointError, match=words):
            Trainer.load(path)
    huge = {
        **base,
        "config": {**base["config"], "model": {"noise_dim": 32, "width": 4096, "depth": 16, "init": "default"}},
    }
    save_checkpoint(tmp_path / "huge.pt", huge, kind="toy2d")
    with pytest.raises(CheckpointError, match="beyond this server's limits"):
        Trainer.load(tmp_path / "huge.pt", limits=Limits())  # refused before a 250M-parameter model is built
    good = tmp_path / "good.pt"
    Trainer(SMALL).save(good)
    assert Trainer.load(good.read_bytes(), limits=Limits()).config == SMALL  # uploads arrive as bytes
    assert Trainer.load(checkpoint_bytes(Trainer(SMALL).state_dict(), kind="toy2d")).config == SMALL  # downloads


# ---- divergence and stepping back ------------------------------------------------------------
def test_divergence_pauses_and_goes_back_to_the_newest_kept_finite_state():
    """A blow-up never applies a non-finite update; the run goes back to its newest kept state (the
    one tape of states, kept every TAPE_EVERY steps), pauses, and steps further back on request."""
    run = Run.single(SMALL.with_values({"steps": 1000}))
    run.advance(12)
    assert run.kept_steps() == [0, 10]
    kept = {k: v.clone() for k, v in run.tapes["run"].states[10]["model"].items()}
    with torch.no_grad():  # what a far too large learning rate does to the weights
        for param in run.trainer.model.parameters():
            param.mul_(1e30)
    out = run.advance(5)
    assert out.paused_reason and "diverged at step 13" in out.paused_reason and "back to step 10" in out.paused_reason
    assert run.step == 10 and run.trainer.diverged and not run.playing
    assert all(torch.equal(run.trainer.model.state_dict()[k], v) for k, v in kept.items())
    assert run.history.records[-1].step <= 10
    with pytest.raises(DivergedError):
        run.trainer.step()
    assert run.step_back() == 0 and not run.trainer.diverged and run.step == 0
    with pytest.raises(ValueError, match="reset"):
        run.step_back()


def test_gradients_that_blow_up_are_never_applied():
    t = Trainer(SMALL)
    t.run(2)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.optimizer.param_groups[0]["lr"] = 1e-3
    original = t.model.forward

    def huge(noise):  # finite outputs whose gradient overflows
        return original(noise) * 1e38

    t.model.forward = huge
    record = t.step()
    assert record.diverged and all(torch.equal(t.model.state_dict()[k], v) for k, v in before.items())


def test_step_back_replays_the_same_batches():
    run = Run.single(SMALL.with_values({"steps": 1000}))
    run.advance(20)
    first = [r.loss for r in run.history.records]
    assert run.step_back() == 10
    run.advance(10)
    assert [r.loss for r in run.history.records] == first


# ---- out of memory ---------------------------------------------------------------------------
def _oom_above(monkeypatch, limit: int):
    """Make every drift computation on more than ``limit`` samples fail like a GPU out of memory."""
    import drift_core.train as train_module

    real = train_module.drifting_loss
    calls = []

    def fake(x, positives, drift_fn):
        calls.append(x.shape[0])
        if x.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return real(x, positives, drift_fn)

    monkeypatch.setattr(train_module, "drifting_loss", fake)
    return calls


def test_out_of_memory_halves_the_batch_and_continues(monkeypatch):
    calls = _oom_above(monkeypatch, 100)
    t = Trainer(SMALL.with_values({"batch_size": 512}))
    r = t.step()
    assert calls == [512, 256, 128, 64]
    assert not r.diverged and r.step == 1 and r.batch_size == 64 and t.config.train.batch_size == 64
    assert "out of memory at batch size 512" in r.message and "smaller batch size" in r.message
    assert (
        len(t.fallback_notices) == 3
        and "at batch size 128 (" in t.fallback_notices[-1]
        and "continuing with batch size 64" in t.fallback_notices[-1]
    )
    assert t.step().message == ""  # the smaller setting sticks: no more failures


def test_out_of_memory_during_the_update_undoes_the_partial_update(monkeypatch):
    a = Trainer(SMALL.with_values({"batch_size": 256}))
    a.undo_updates = True  # what a GPU run does (on the CPU the per-step copy is skipped)
    real_step = a.optimizer.step
    failures = []

    def step_that_fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            with torch.no_grad():
                for p in a.model.parameters():
                    p.add_(1.0)  # a half-applied update
            raise torch.OutOfMemoryError("CUDA out of memory during the optimizer step")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(a.optimizer, "step", step_that_fails_once)
    ra = a.step()
    b = Trainer(SMALL.with_values({"batch_size": 256}))
    batch = b.draw_batch()
    b.update(b.config.with_values({"batch_size": 128}))
    rb = b.step(Batch(batch.noise[:128], batch.positives[:128]))
    assert ra.loss == rb.loss and ra.batch_size == 128
    assert all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items())


def test_out_of_memory_moves_to_the_cpu_then_gives_a_clear_error(monkeypatch):
    t = Trainer(SMALL.with_values({"batch_size": 64}))
    real_once = t._step_once

    def once(batch):  # pretend the accelerator runs out at any size; the CPU copes
        if t.device.type != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real_once(batch)

    monkeypatch.setattr(t, "_step_once", once)
    t.device = torch.device("meta")  # stands in for a GPU on this CPU-only machine
    r = t.step()
    assert t.device.type == "cpu" and r.step == 1 and "continuing on the CPU" in r.message
    # at the smallest batch on the CPU there is nothing smaller left: a clear error, nothing changed
    calls = _oom_above(monkeypatch, 1)
    u = Trainer(SMALL.with_values({"batch_size": 64}))
    before = {k: v.clone() for k, v in u.model.state_dict().items()}
    with pytest.raises(torch.OutOfMemoryError, match="smaller model or batch size"):
        u.step()
    assert calls and u.step_count == 0
    assert all(torch.equal(u.model.state_dict()[k], v) for k, v in before.items())


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


# ---- many sessions ---------------------------------------------------------------------------
def test_session_registry_evicts_the_least_recently_used_idle_session():
    clock = [0.0]
    released = []
    reg = SessionRegistry(2, min_idle_s=10, clock=lambda: clock[0])
    reg.touch("a", lambda: released.append("a"))
    reg.touch("b", lambda: released.append("b"))
    clock[0] = 5
    reg.touch("a")  # a is used again: b is now the least recently used
    with pytest.raises(SessionLimitError, match="2 active sessions.*DRIFT_MAX_SESSIONS=2"):
        reg.touch("c")  # b has been idle 5 s only: the newcomer is refused, nobody is evicted
    assert released == [] and reg.keys() == ["b", "a"] and not reg.is_live("c")
    clock[0] = 12
    assert reg.touch("c", lambda: released.append("c")) == ["b"]  # b idle 12 s now
    assert released == ["b"] and reg.keys() == ["a", "c"] and len(reg) == 2
    assert reg.was_evicted("b") and not reg.was_evicted("b") and not reg.was_evicted("a")
    clock[0] = 30
    reg.touch("b")  # b comes back with a fresh run: a (idle 25 s) goes
    assert released == ["b", "a"] and reg.is_live("b") and not reg.is_live("a")
    reg.forget("c")
    assert reg.keys() == ["b"]
    with pytest.raises(ValueError):
        SessionRegistry(0)


def test_session_registry_stays_bounded_under_concurrent_use():
    reg = SessionRegistry(5, min_idle_s=0)
    released = []
    refused = []
    lock = threading.Lock()

    def user(i):
        for j in range(200):
            key = f"s{i}-{j % 3}"
            try:
                reg.touch(key, lambda key=key: (lock.acquire(), released.append(key), lock.release()))
            except SessionLimitError:
                refused.append(key)
            assert len(reg) <= 5

    threads = [threading.Thread(target=user, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(reg) == 5 and not refused  # with min_idle_s=0 the oldest can always go
    assert len(released) + len(reg) >= 24  # every distinct session is either live or was released


# ---- CIFAR10 archive: interrupted or corrupt downloads are never used ------------------------------------
from tests.test_images import tiny_cifar  # noqa: E402,F401  (a tiny CIFAR10-format archive + md5 table)


def test_corrupt_cifar10_archive_is_detected_set_aside_and_reported(tiny_cifar):
    from drift_core.images.data import DatasetUnavailable, load_cifar10

    root, _ = tiny_cifar
    archive = root / "cifar-10-python.tar.gz"
    good = archive.read_bytes()
    archive.write_bytes(good[: len(good) // 2])  # a partial file, as an interrupted download leaves it
    with pytest.raises(DatasetUnavailable, match="failed its MD5 checksum.*not used") as info:
        load_cifar10(root)
    assert "cifar-10-python.tar.gz.corrupt" in str(info.value)
    assert not archive.exists() and (root / "cifar-10-python.tar.gz.corrupt").is_file()
    assert not (root / "cifar-10-batches-py").exists()  # nothing was extracted from it
    archive.write_bytes(good)  # the real archive again: it verifies and loads
    assert len(load_cifar10(root)) == 15


def test_partially_extracted_cifar10_folder_is_not_used(tiny_cifar):
    from drift_core.images.data import DatasetUnavailable, load_cifar10

    root, _ = tiny_cifar
    load_cifar10(root)
    (root / "cifar-10-python.tar.gz").unlink()
    (root / "cifar-10-batches-py" / "data_batch_4").write_bytes(b"\x80\x02half a pickle")
    with pytest.raises(DatasetUnavailable, match="data_batch_4 fails its MD5 checksum"):
        load_cifar10(root)
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetUnavailable, match="data_batch_4 fails its MD5 checksum"):
        load_cifar10(root)


def test_interrupted_cifar10_download_leaves_nothing_usable(tiny_cifar, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    from drift_core.images.data import DatasetUnavailable, load_cifar10

    root, _ = tiny_cifar
    archive = root / "cifar-10-python.tar.gz"
    good = archive.read_bytes()
    archive.unlink()

    def cut_off(url, filename, chunk_size=1024 * 32):  # the connection drops half-way through
        with open(filename, "wb") as fh:
            fh.write(good[: len(good) // 3])
        raise OSError("connection reset by peer")

    monkeypatch.setattr(tv_utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setattr(tv_utils, "_urlretrieve", cut_off)
    with pytest.raises(DatasetUnavailable, match="connection reset by peer.*failed its MD5 checksum"):
        load_cifar10(root, download=True)  # torchvision's real download path, with the network cut
    assert not archive.exists() and (root / "cifar-10-python.tar.gz.corrupt").is_file()
    assert not (root / "cifar-10-batches-py").exists()

    def complete(url, filename, chunk_size=1024 * 32):
        Path(filename).write_bytes(good)

    monkeypatch.setattr(tv_utils, "_urlretrieve", complete)
    assert len(load_cifar10(root, download=True)) == 15  # a retry downloads, verifies and extracts
