"""Server limits and the lenient reading of a shared link (drift_core.limits.config_from_query), fuzzed:
any query string gives a valid config within the limits and short notices, never an exception; limits
from the environment, on the model's size, on uploads and on steps per frame."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from drift_core import cli
from drift_core.config import ConfigError, ExperimentConfig, flat_field_names, model_parameter_count
from drift_core.data.points import PointSetError, load_points
from drift_core.limits import Limits, config_from_query
from drift_core.models import build_generator
from drift_core.train import Trainer
from tests.fuzz_support import fuzz_settings

_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(-(10**40), 10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "",
            "nan",
            "inf",
            "-inf",
            "1e400",
            "true",
            "baseline",
            "lookahead",
            "cuda",
            "mps",
            "cpu",
            "custom",
            "9" * 5000,
            "x" * 100_000,
            "0x10",
            "1_000",
            " 3 ",
            "\x00",
            "٣",
        ]
    ),
)
_KEYS = st.one_of(st.sampled_from(flat_field_names() + ("method",)), st.text(max_size=10))
_LIMITS = st.builds(
    Limits, max_batch=st.integers(2, 10_000), max_k=st.integers(1, 16), max_model_params=st.integers(1, 5_000_000)
)


@fuzz_settings(max_examples=300)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8), _LIMITS)
def test_any_query_gives_a_valid_config_within_the_limits(params, limits):
    cfg, notices = config_from_query(ExperimentConfig(), params, limits)
    cfg.validate()
    assert cfg.train.batch_size <= limits.max_batch and cfg.drift.K <= limits.max_k
    assert all(isinstance(n, str) and len(n) < 400 for n in notices), notices
    assert ExperimentConfig.from_json(cfg.to_json()) == cfg  # what a link gives can be saved and shared


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("seed", "1" * 25, 2**31 - 1),
        ("width", "9" * 30, 256),
        ("steps", "9" * 40, 10_000_000),
        ("batch_size", "1" * 22, 4096),
        ("depth", "9" * 30, 16),
        ("noise_dim", "1e30", 1024),
    ],
)
def test_huge_integers_in_a_link_are_clamped_before_torch(name, value, expected):
    cfg, notices = config_from_query(ExperimentConfig(), {name: value}, Limits())
    assert cfg.to_flat()[name] == expected and notices and all(len(n) < 200 for n in notices), notices
    small = {k: v for k, v in {"width": 8, "depth": 1, "batch_size": 8, "noise_dim": 4}.items() if k != name}
    assert Trainer(cfg.with_values(small)).step().loss >= 0  # the value reaches torch without an OverflowError


def test_a_link_asking_for_an_absent_device_keeps_the_current_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg, notices = config_from_query(ExperimentConfig(), {"device": "cuda", "tau": "0.1"}, Limits())
    assert cfg.train.device == "auto" and cfg.drift.tau == 0.1
    assert notices == ["ignored device='cuda': device 'cuda' was requested but no CUDA GPU is available"]


def test_very_long_values_are_quoted_short():
    cfg, notices = config_from_query(
        ExperimentConfig(), {"tau": "x" * 100_000, "seed": "9" * 5000, "method": "m" * 1000}, Limits()
    )
    assert cfg == ExperimentConfig() and len(notices) == 3 and all(len(n) < 300 for n in notices), notices


def test_limits_below_their_minimum_are_raised_from_the_environment_and_refused_in_code():
    assert Limits.from_env({"DRIFT_MAX_BATCH": "1", "DRIFT_MAX_K": "-3"}) == Limits(max_batch=2, max_k=1)
    with pytest.raises(ConfigError, match="max_batch must be at least 2"):
        Limits(max_batch=1)
    with pytest.raises(ConfigError, match="positive integer"):
        Limits.from_env({"DRIFT_MAX_K": "9" * 10_000})


def test_steps_per_frame_of_any_value_is_a_number_in_range():
    limits = Limits(max_steps_per_frame=5)
    for value, expected in ((3, 3), (10**30, 5), (-(10**30), 1), (float("nan"), 1), (float("inf"), 1), ("many", 1)):
        steps, notice = limits.steps_per_frame(value)
        assert steps == expected and (notice == "") == (value == 3), (value, notice)


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("dimension", "1000", 64),
        ("particle_step", "1e9", 100.0),
        ("affinity_floor", "0.5", 0.01),
        ("embedding_noise", "7", 1.0),
        ("kernel", "gaussian", "gaussian"),
        ("mode", "particles", "particles"),
    ],
)
def test_a_link_reaches_the_new_fields_within_their_ranges(name, value, expected):
    cfg, notices = config_from_query(ExperimentConfig(), {name: value}, Limits())
    assert cfg.to_flat()[name] == expected
    assert bool(notices) == (str(expected) != value)
    cfg, notices = config_from_query(ExperimentConfig(), {"kernel": "cauchy"}, Limits())
    assert cfg.drift.kernel == "laplace" and "kernel" in notices[0]


def test_the_limit_on_the_generator_counts_its_d_outputs():
    config = ExperimentConfig().with_values({"width": 256})
    for d in (2, 64):
        built = build_generator(config.model, seed=0, out_dim=d)
        assert model_parameter_count(config.model, d) == sum(p.numel() for p in built.parameters())
    limits = Limits(max_model_params=model_parameter_count(config.model) + 100)
    limits.check(config)
    with pytest.raises(ConfigError, match="parameters"):
        limits.check(config.with_values({"dimension": 64}))


# ---- limits from the environment and on the model's size ---------------------------------------


def test_query_params_are_clamped_or_defaulted_with_notices():
    cfg, notices = config_from_query(
        ExperimentConfig(), {"K": "99", "tau": "abc", "batch_size": "100000", "unknown": "1", "lr": "0.01"}
    )
    assert (
        cfg.drift.K == 8
        and cfg.drift.tau == 0.05
        and cfg.train.batch_size == Limits().max_batch
        and cfg.train.lr == 0.01
    )
    assert len(notices) == 3


def test_limits_from_env_and_check():
    limits = Limits.from_env({"DRIFT_MAX_BATCH": "256", "DRIFT_MAX_K": "2"})
    with pytest.raises(ConfigError, match="256"):
        limits.check(ExperimentConfig().with_values({"batch_size": 512}))
    with pytest.raises(ConfigError, match="K = 3"):
        limits.check(ExperimentConfig().with_values({"method": "lookahead", "K": 3}))
    with pytest.raises(ConfigError):
        Limits.from_env({"DRIFT_MAX_K": "lots"})


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
