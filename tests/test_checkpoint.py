"""Checkpoints (drift_core.checkpoint, Trainer.load, ImageTrainer.load): only a checkpoint that trains
is accepted, every other file is a CheckpointError, and a save is atomic."""

from __future__ import annotations

import copy
import io
import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from drift_core.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint, save_checkpoint
from drift_core.config import ConfigError, ExperimentConfig
from drift_core.train import Trainer
from tests.fuzz_support import fuzz_settings, mutated

SMALL = ExperimentConfig().with_values({"batch_size": 64, "width": 16, "depth": 2, "noise_dim": 8, "steps": 50})


def _trained_state() -> dict:
    trainer = Trainer(SMALL)
    trainer.run(3)
    return trainer.state_dict()


STATE = _trained_state()
GOOD = checkpoint_bytes(STATE, kind="toy2d")


def _edited(edit) -> bytes:
    state = copy.deepcopy(STATE)
    edit(state)
    return checkpoint_bytes(state, kind="toy2d")


def _first_param_state(state: dict) -> dict:
    return state["optimizer"]["state"][0]


# ---- the field reports' checkpoints that passed validation but broke training later -------------------
FIELD_REPORT_CASES = {
    "complex weights": (
        lambda s: s["model"].update({k: v.to(torch.complex64) for k, v in s["model"].items()}),
        "only real floating-point",
    ),
    "capturable Adam": (lambda s: s["optimizer"]["param_groups"][0].update(capturable=True), "capturable=True"),
    "wrong-shape optimiser state": (
        lambda s: _first_param_state(s).update(exp_avg=torch.zeros(3)),
        r"shape \[3\], expected \[16, 8\]",
    ),
    "amsgrad without its state": (lambda s: s["optimizer"]["param_groups"][0].update(amsgrad=True), "amsgrad=True"),
    "amsgrad with a stray state": (
        lambda s: _first_param_state(s).update(max_exp_avg_sq=torch.zeros(1)),
        "unexpected 'max_exp_avg_sq'",
    ),
    "complex optimiser state": (
        lambda s: _first_param_state(s).update(exp_avg=_first_param_state(s)["exp_avg"].to(torch.complex64)),
        "only real floating-point",
    ),
    "integer optimiser state": (
        lambda s: _first_param_state(s).update(exp_avg_sq=_first_param_state(s)["exp_avg_sq"].long()),
        "only real floating-point",
    ),
    "negative second moment": (lambda s: _first_param_state(s)["exp_avg_sq"].fill_(-1.0), "negative"),
    "NaN weights": (lambda s: next(iter(s["model"].values())).fill_(float("nan")), "NaN"),
    "betas out of range": (lambda s: s["optimizer"]["param_groups"][0].update(betas=(1.5, 0.999)), "betas"),
    "betas as text": (lambda s: s["optimizer"]["param_groups"][0].update(betas="fast"), "betas"),
    "lr missing": (lambda s: s["optimizer"]["param_groups"][0].pop("lr"), "lacks its setting 'lr'"),
    "state of a parameter the model lacks": (lambda s: s["optimizer"]["state"].update({99: {}}), "parameter 99"),
    "huge step": (lambda s: s.update(step=10**25), "step"),
    "infinite training time": (lambda s: s.update(wall_s=float("inf")), "wall_s"),
    "huge seed in the config": (lambda s: s["config"]["train"].update(seed=10**25), "seed must be between"),
    "huge width in the config": (lambda s: s["config"]["model"].update(width=10**25), "width must be between"),
}


@pytest.mark.parametrize("name", list(FIELD_REPORT_CASES))
def test_checkpoints_that_would_break_training_are_refused(name):
    edit, words = FIELD_REPORT_CASES[name]
    with pytest.raises(CheckpointError, match=words):
        Trainer.load(_edited(edit))


def test_unedited_checkpoint_loads_and_continues_identically():
    original = Trainer(SMALL)
    original.run(3)
    resumed = Trainer.load(checkpoint_bytes(original.state_dict(), kind="toy2d"))
    assert [r.loss for r in resumed.run(2)] == [r.loss for r in original.run(2)]


def test_checkpoint_asking_for_an_absent_device_is_a_clear_message(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = _edited(lambda s: s["config"]["train"].update(device="cuda"))
    with pytest.raises(CheckpointError, match="no CUDA GPU is available"):
        Trainer.load(data)
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):  # the caller's device, not the file's
        Trainer.load(GOOD, device="cuda")
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        Trainer(SMALL.with_values({"device": "cuda"}))
    assert Trainer.load(data, device="cpu").device.type == "cpu"  # the way out the message names


# ---- fuzzing -------------------------------------------------------------------------------------------
@fuzz_settings(max_examples=150)
@given(st.one_of(st.binary(max_size=4096), mutated(GOOD)))
def test_fuzzed_checkpoint_bytes_are_refused_or_train(data):
    """Random bytes and corrupted real checkpoints: a CheckpointError, or a trainer that trains."""
    try:
        trainer = Trainer.load(data)
    except CheckpointError:
        return
    trainer.run(1)


_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.complex64,
    torch.int64,
    torch.uint8,
    torch.bool,
]
_NASTY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.builds(
        lambda shape, dtype, fill: torch.full(shape, fill).to(dtype),
        st.lists(st.integers(0, 4), max_size=3).map(tuple),
        st.sampled_from(_DTYPES),
        st.sampled_from([0.0, 1.0, -1.0, float("nan"), float("inf")]),
    ),
)


def _paths(state, prefix=()):
    """Every (path, value) of a nested checkpoint state (dicts, lists, tuples)."""
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else ()
    for key, value in items:
        yield prefix + (key,), value
        yield from _paths(value, prefix + (key,))


PATHS = [path for path, _ in _paths(STATE)]


def _set(state, path, value):
    *head, last = path
    for key in head:
        state = state[key]
    if isinstance(state, tuple):
        raise TypeError  # tuples (betas) are replaced whole through their parent's path
    state[last] = value


@fuzz_settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from(PATHS), _NASTY, st.integers(0, 2)), min_size=1, max_size=3))
def test_checkpoints_with_fuzzed_entries_are_refused_or_train(edits):
    """Any entry of a real checkpoint (weights, optimiser state and settings, step, time, random state,
    config) replaced by another value, a tensor of another dtype or shape, NaN, a huge integer, or
    deleted: a CheckpointError, or a trainer that trains and samples."""
    state = copy.deepcopy(STATE)
    for path, value, action in edits:
        try:
            if action == 0:  # delete the entry
                *head, last = path
                parent = state
                for key in head:
                    parent = parent[key]
                del parent[last]
            else:
                _set(state, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced the entry's parent
    try:
        trainer = Trainer.load(checkpoint_bytes(state, kind="toy2d"))
    except CheckpointError:
        return
    records = trainer.run(2)
    assert all(r.step >= 0 for r in records)
    trainer.sample(4)


# ---- files ---------------------------------------------------------------------------------------------
def test_truncated_or_corrupt_checkpoint_files_are_refused_with_a_message(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, STATE, kind="toy2d")
    data = path.read_bytes()
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="not a readable checkpoint|truncated"):
            Trainer.load(path)
    path.write_bytes(data[:100] + bytes(200) + data[300:])  # zeros over the middle
    with pytest.raises(CheckpointError):
        Trainer.load(path)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path, kind="toy2d")  # a folder
    with pytest.raises(CheckpointError, match="expected a checkpoint file"):
        load_checkpoint(12345, kind="toy2d")


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, STATE, kind="toy2d")
    before = path.read_bytes()

    def dies_midway(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # as if killed while writing

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, STATE, kind="toy2d")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.pt"]
    monkeypatch.undo()
    assert Trainer.load(path).step_count == 3


def test_file_objects_and_bytes_load_alike():
    assert Trainer.load(io.BytesIO(GOOD)).step_count == Trainer.load(bytearray(GOOD)).step_count == 3


def test_image_checkpoints_that_would_break_training_are_refused(monkeypatch):
    from drift_core.images.config import ImageExperimentConfig
    from drift_core.images.train import ImageTrainer

    trainer = ImageTrainer(
        ImageExperimentConfig().with_values({"batch_size": 8, "positives": 8, "steps": 5}), device="cpu"
    )
    trainer.run(1)
    state = trainer.state_dict()
    cases = {
        "complex EMA": (
            lambda s: s["ema"].update({k: v.to(torch.complex64) for k, v in s["ema"].items() if v.is_floating_point()}),
            "only real floating-point",
        ),
        "capturable AdamW": (lambda s: s["optimizer"]["param_groups"][0].update(capturable=True), "capturable=True"),
        "amsgrad without its state": (lambda s: s["optimizer"]["param_groups"][0].update(amsgrad=True), "amsgrad=True"),
        "huge step": (lambda s: s.update(step=10**20), "step"),
        "huge seed": (lambda s: s["config"]["train"].update(seed=10**20), "seed must be between"),
    }
    for _name, (edit, words) in cases.items():
        broken = copy.deepcopy(state)
        edit(broken)
        with pytest.raises(CheckpointError, match=words):
            ImageTrainer.load(checkpoint_bytes(broken, kind="images"), device="cpu")
    on_gpu = copy.deepcopy(state)
    on_gpu["config"]["train"]["device"] = "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CheckpointError, match="no CUDA GPU is available"):
        ImageTrainer.load(checkpoint_bytes(on_gpu, kind="images"))
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        ImageTrainer.load(checkpoint_bytes(state, kind="images"), device="cuda")
    assert ImageTrainer.load(checkpoint_bytes(on_gpu, kind="images"), device="cpu").device.type == "cpu"
    resumed = ImageTrainer.load(checkpoint_bytes(state, kind="images"), device="cpu")
    assert resumed.step_count == 1 and not resumed.step().diverged
