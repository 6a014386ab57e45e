"""Reliability and security through the app (AppTest of ui.safety, ui.controls and ui.run_view): bad uploads keep the previous data, checkpoints
are saved and loaded safely (a malicious pickle is never executed), link settings are clamped with a
notice, limits are refused up front, divergence pauses with Step back, out-of-memory falls back with a
message, and the number of live sessions is bounded."""

from __future__ import annotations

import gc
import pickle
import threading
import time
import types
import weakref

import pytest
import torch
from streamlit.testing.v1 import AppTest

from drift_core.checkpoint import checkpoint_bytes
from drift_core.config import ExperimentConfig
from drift_core.train import Trainer
from drift_views.registry import SessionRegistry, set_shared_registry
from drift_views.session import LabSession
from tests.app_support import lab_of, open_page, step_counter, texts, upload
from tests.conftest import ROOT
from ui import safety

SMALL_URL = {"dataset": "moons", "batch_size": "64", "width": "32", "depth": "2", "steps_per_frame": "10"}


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test gets its own session registry and its torch thread count back."""
    threads = torch.get_num_threads()
    set_shared_registry(None)
    yield
    set_shared_registry(None)
    torch.set_num_threads(threads)


def freed(ref: weakref.ref, seconds: float = 10.0) -> bool:
    """Whether the object behind ``ref`` is freed, collecting until it is (at most ``seconds``): a
    ``gc.collect()`` returns at once without collecting while another thread is collecting."""
    deadline = time.monotonic() + seconds
    while True:
        gc.collect()
        if ref() is None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def open_playground(query: dict | None = None) -> AppTest:
    return open_page("playground", query if query is not None else SMALL_URL)


def run_of(at: AppTest):
    return lab_of(at).runs.get("playground")


# ---- uploaded point sets --------------------------------------------------------------------------------
def test_bad_csv_uploads_get_a_message_and_keep_the_previous_data(monkeypatch):
    at = open_playground()
    good = "x,y\n" + "\n".join(f"{i / 20 - 1},{(i % 5) / 5}" for i in range(40))
    upload(at, "upload_csv", "good.csv", good.encode())
    points, run = lab_of(at).points.points, run_of(at)
    assert (
        points.shape == (40, 2) and lab_of(at).config.data.dataset == "custom" and run.config.data.dataset == "custom"
    )
    monkeypatch.setenv("DRIFT_MAX_UPLOAD_POINTS", "50")
    bad = {
        "empty.csv": (b"", "empty"),
        "short.csv": (b"1,2\n4\n", "at least 2 columns"),
        "words.csv": (b"hello,world\nfoo,bar\n", "two numeric columns"),
        "nan.csv": (b"1,2\nnan,3\n", "NaN"),
        "one.csv": (b"1,2\n", "at least 2"),
        "many.csv": (b"1,2\n" * 51, "more than 50 rows"),
        "image.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        "latin1.csv": (b"1,2\n\xe9,3\n", "UTF-8"),
        "huge.csv": (b"1,2\n" * (5 * 2**20 + 1), "too large"),
    }
    for name, (content, words) in bad.items():
        upload(at, "upload_csv", name, content)
        errors = texts(at.sidebar.error)
        assert name in errors and words in errors and "previous data is unchanged" in errors, (name, errors)
        assert lab_of(at).points.points is points  # the previous data is kept
        assert run_of(at) is run and run.config.data.dataset == "custom"


# ---- checkpoints ----------------------------------------------------------------------------------------
def test_checkpoint_saved_in_one_session_loads_in_another():
    a = open_playground()
    a.button(key="play").click().run()
    a.run()
    trainer = run_of(a).trainer
    assert trainer.step_count >= 10
    data = safety.trainer_checkpoint(trainer)  # what the "Save checkpoint" button downloads
    assert any(b.label == "Save checkpoint" for b in a.get("download_button"))
    b = open_playground({"dataset": "checkerboard", "width": "32", "depth": "2"})
    upload(b, "checkpoint_upload", "mine.pt", data)
    loaded = run_of(b).trainer
    assert loaded.step_count == trainer.step_count and loaded.config.data.dataset == "moons"
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in trainer.model.state_dict().items())
    assert b.selectbox(key="dataset").value == "moons" and step_counter(b) == trainer.step_count
    assert "Loaded mine.pt" in texts(b.sidebar.success)
    b.run()  # the loaded run is kept (its settings became the session's), not reset
    assert run_of(b).trainer is loaded


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_bad_and_malicious_checkpoints_are_refused_in_the_ui(tmp_path):
    marker = tmp_path / "executed"
    import io

    evil = io.BytesIO()
    torch.save({"format": "drift-lab-checkpoint", "version": 1, "kind": "toy2d", "x": _Exploit(str(marker))}, evil)
    small = ExperimentConfig().with_values({"batch_size": 64, "width": 32, "depth": 2})
    good = checkpoint_bytes(Trainer(small).state_dict(), kind="toy2d")
    other = Trainer(small).state_dict()
    other["config"]["model"]["width"] = 48
    huge = Trainer(small).state_dict()
    huge["config"]["model"].update(width=4096, depth=16)
    cases = {
        "evil.pt": (evil.getvalue(), "refused"),
        "evil_pickle.pt": (pickle.dumps(_Exploit(str(marker))), "refused"),
        "notes.pt": (b"just some text\n", "not a torch file"),
        "cut.pt": (good[: len(good) // 2], "truncated"),
        "images.pt": (checkpoint_bytes(Trainer(small).state_dict(), kind="images"), "'images' checkpoint"),
        "arch.pt": (checkpoint_bytes(other, kind="toy2d"), "do not fit"),
        "huge.pt": (checkpoint_bytes(huge, kind="toy2d"), "beyond this server's limits"),
    }
    at = open_playground()
    run = run_of(at)
    for name, (content, words) in cases.items():
        upload(at, "checkpoint_upload", name, content)
        errors = texts(at.sidebar.error)
        assert name in errors and words in errors and "current run is unchanged" in errors, (name, errors)
        assert run_of(at) is run
        assert not marker.exists()
    pickle.loads(pickle.dumps(_Exploit(str(marker))))  # the payload is real: unpickled naively, it writes
    assert marker.exists()


# ---- links and limits -----------------------------------------------------------------------------------
def test_link_settings_out_of_range_are_clamped_with_a_notice(monkeypatch):
    monkeypatch.setenv("DRIFT_MAX_MODEL_PARAMS", "100000")
    at = open_playground(
        {
            "K": "99",
            "method": "lookahead",
            "lr": "1e9",
            "tau": "abc",
            "width": "4096",
            "batch_size": "100000",
            "steps_per_frame": "1000",
            "seed": "-5",
        }
    )
    cfg = lab_of(at).config
    assert cfg.drift.K == 8 and cfg.train.lr == 1.0 and cfg.drift.tau == 0.05 and cfg.model.width == 128
    assert cfg.train.batch_size == 4096 and cfg.train.seed == 0 and lab_of(at).view.steps_per_frame == 50
    notices = texts(at.info)
    for words in ("K='99'", "lr='1e9'", "tau='abc'", "width='4096'", "batch_size='100000'", "seed='-5'"):
        assert words in notices, (words, notices)


def test_settings_beyond_the_server_limits_are_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("DRIFT_MAX_BATCH", "128")
    monkeypatch.setenv("DRIFT_MAX_K", "2")
    monkeypatch.setenv("DRIFT_MAX_STEPS_PER_FRAME", "4")
    monkeypatch.setenv("DRIFT_MAX_MODEL_PARAMS", "20000")
    at = open_playground({"width": "32", "depth": "2", "batch_size": "64"})
    assert max(at.select_slider(key="batch_size").options, key=float) == "128"
    assert at.slider(key="K").max == 2 and at.select_slider(key="steps_per_frame").options[-1] == "3"
    run = run_of(at)
    at.select_slider(key="width").set_value(512).run()
    errors = texts(at.sidebar.error)
    assert "Setting not applied" in errors and "above this server's limit of 20,000" in errors
    assert run_of(at) is run and run.config.model.width == 32


# ---- faults ---------------------------------------------------------------------------------------------
def test_divergence_pauses_keeps_the_last_finite_picture_and_steps_back():
    at = open_playground()
    at.button(key="play").click().run()
    at.run()
    at.run()
    run = run_of(at)
    assert run.step >= 30 and 20 in run.kept_steps()
    with torch.no_grad():  # what a far too large learning rate does to the weights (the page re-applies lr each run)
        for param in run.trainer.model.parameters():
            param.mul_(1e30)
    for _ in range(3):
        at.run()
        assert not at.exception, at.exception
        if run.trainer.diverged:
            break
    assert run.trainer.diverged and not run.playing
    shown = step_counter(at)
    assert "diverged" in texts(at.warning)
    snap = run.frame()
    assert torch.isfinite(torch.as_tensor(snap.generated)).all()  # the picture is the last finite state
    at.run()  # paused: nothing trains, the counter stays
    assert step_counter(at) == shown and run.trainer.diverged
    back = at.button(key="step_back")
    assert "Step back to step" in back.label
    back.click().run()
    assert not at.exception, at.exception
    assert not run.trainer.diverged and run.step % 10 == 0 and step_counter(at) == run.step
    assert all(r.step <= run.step for r in run.history.records)
    assert "Stepped back" in texts(at.caption)
    at.select_slider(key="lr").set_value(1e-3).run()
    at.button(key="play").click().run()
    at.run()
    assert step_counter(at) > run.step - 1 and not run.trainer.diverged


def test_out_of_memory_lowers_the_batch_with_a_message(monkeypatch):
    import drift_core.train as train_module

    real = train_module.drifting_loss

    def small_gpu(x, positives, drift_fn):
        if x.shape[0] > 100:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return real(x, positives, drift_fn)

    monkeypatch.setattr(train_module, "drifting_loss", small_gpu)
    at = open_playground({**SMALL_URL, "batch_size": "512"})
    run = run_of(at)
    at.button(key="play").click().run()
    at.run()
    assert not at.exception, at.exception
    assert run.trainer.config.train.batch_size == 64 and run.step > 0
    warnings = texts(at.warning)
    assert "Out of memory" in warnings and "smaller batch size" in warnings and "batch size 64" in warnings
    assert at.select_slider(key="batch_size").value == 64 and lab_of(at).config.train.batch_size == 64
    at.run()
    assert run_of(at) is run and run.trainer.config.train.batch_size == 64  # no reset, no retry at 512


# ---- many users -----------------------------------------------------------------------------------------
def test_idle_sessions_are_evicted_and_newcomers_refused_when_all_are_active():
    set_shared_registry(SessionRegistry(1, min_idle_s=0))
    a = open_playground()
    a.button(key="play").click().run()
    assert run_of(a).step > 0
    b = open_playground()  # the server holds one live session: a (idle) is evicted for b
    assert lab_of(a).config.data.dataset == "moons"  # a's settings are kept
    assert not lab_of(a).runs  # a's run was released
    a.run()
    assert not a.exception, a.exception
    assert LabSession.EVICTED_NOTICE in texts(a.warning) and step_counter(a) == 0
    set_shared_registry(SessionRegistry(1, min_idle_s=3600))
    b.run()
    c = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    c.run()
    assert "Drift Lab is busy" in texts(c.error) and "DRIFT_MAX_SESSIONS=1" in texts(c.error)
    b.run()
    assert not b.exception and not b.error  # the active session is untouched


def test_absurd_links_get_notices_and_never_an_exception():
    """What a curious class types into the address bar: very long values, huge numbers, wrong types,
    layer lists of junk, for every setting at once."""
    junk = "x" * 20_000  # (Streamlit itself ignores a whole query string beyond 512 kB)
    params = {name: junk for name in ("dataset", "K", "tau", "batch_size", "lr", "steps", "seed", "width", "init")}
    params |= {
        "steps_per_frame": "9" * 5000,
        "layers": ",".join(["V"] * 10_000 + ["?"]),
        "arrow_scale": "-1e999",
        "presenter": junk,
        "fairness": "maybe",
        "method": junk,
    }
    for page in ("playground", "compare", "inspector", "sweep"):
        at = open_page(page, params)
        notices = texts(at.info)
        assert "Link settings adjusted" in notices and len(notices) < 5000, (page, len(notices))
        assert lab_of(at).config.data.dataset == "checkerboard"  # the junk was ignored, the defaults kept


def test_a_double_click_on_play_and_a_page_switch_mid_run_lose_nothing():
    at = open_playground()
    at.button(key="play").click().run()
    at.button(key="play").click().run()  # the second click of a double click pauses: no error, no lost run
    run = run_of(at)
    assert not run.playing and run.step > 0
    at.button(key="play").click().run()
    playing_at = run.step
    at.switch_page("pages/compare.py").run()  # away while it plays...
    assert not at.exception, at.exception
    at.switch_page("pages/playground.py").run()  # ...and back: the same run, further on or where it was
    assert not at.exception, at.exception
    assert run_of(at) is run and run.step >= playing_at and step_counter(at) == run.step


def test_the_session_registry_does_not_keep_a_closed_sessions_runs_alive():
    at = open_playground()
    at.button(key="play").click().run()
    run = weakref.ref(run_of(at))
    assert run() is not None and len(safety.registry()) == 1
    del at  # the tab closes: Streamlit drops its session state
    assert freed(run)  # nothing of ours (the registry's callback included) keeps the run alive


def test_an_evicted_sessions_run_is_freed_while_its_tab_stays_open():
    """Streamlit keeps the page's live fragment (and the view in it) as long as the tab is open: the
    view must not keep a run alive that the registry released."""
    set_shared_registry(SessionRegistry(1, min_idle_s=0))
    a = open_playground()
    a.button(key="play").click().run()
    run = weakref.ref(run_of(a))
    open_playground()  # the server holds one live session: a (idle) is evicted, its tab still open
    assert not lab_of(a).runs and freed(run)
    a.run()  # and a's next frame starts a fresh run, with the notice
    assert not a.exception, a.exception
    assert LabSession.EVICTED_NOTICE in texts(a.warning) and run_of(a) is not None


def test_the_janitor_makes_streamlit_forget_closed_tabs_it_no_longer_keeps(monkeypatch):
    """Streamlit (1.67) prunes its store of disconnected sessions only when another session disconnects;
    the janitor prunes it on its own clock, through the session manager's lock. This drives the real
    storage class, so a Streamlit that changes these internals fails here instead of leaking quietly."""
    from streamlit import runtime
    from streamlit.runtime.memory_session_storage import MemorySessionStorage

    clock = [100.0]
    storage = MemorySessionStorage(ttl_seconds=5)
    storage._cache._timer = lambda: clock[0]

    class ClosedTab:  # what Streamlit stores: a session (with an id) inside a SessionInfo
        id = "closed-tab"

    kept = ClosedTab()
    storage.save(types.SimpleNamespace(session=kept))
    manager = types.SimpleNamespace(_session_storage=storage, _storage_lock=threading.Lock())
    monkeypatch.setattr(runtime, "exists", lambda: True)
    monkeypatch.setattr(runtime, "get_instance", lambda: types.SimpleNamespace(_session_mgr=manager))
    assert safety.forget_expired_streamlit_sessions()
    assert storage.get("closed-tab") is not None  # within its TTL: kept for a reconnecting tab
    clock[0] += 6
    referent = weakref.ref(kept)
    del kept
    assert safety.forget_expired_streamlit_sessions()
    assert freed(referent)  # pruned: nothing of the closed tab's session is kept
    monkeypatch.setattr(runtime, "get_instance", lambda: types.SimpleNamespace(_session_mgr=object()))
    assert not safety.forget_expired_streamlit_sessions()  # internals not as expected: leaves them alone


def test_no_janitor_without_a_streamlit_server():
    assert safety.start_memory_janitor() is None  # AppTest and bare mode: nothing to tidy, nothing started
    assert not [t for t in threading.enumerate() if t.name == "drift-lab-memory-janitor"]


def test_a_particle_runs_checkpoint_loads_as_a_particle_run():
    from drift_core.particles import ParticleTrainer

    a = open_playground({**SMALL_URL, "mode": "particles"})
    a.button(key="step").click().run()
    trainer = run_of(a).trainer
    assert isinstance(trainer, ParticleTrainer)
    b = open_playground()
    upload(b, "checkpoint_upload", "particles.pt", safety.trainer_checkpoint(trainer))
    loaded = run_of(b).trainer
    assert isinstance(loaded, ParticleTrainer) and loaded.step_count == trainer.step_count == 1
    assert lab_of(b).config.train.mode == "particles" and "Loaded particles.pt" in texts(b.sidebar.success)
