"""The config JSON readers (ExperimentConfig.from_json, ImageExperimentConfig.from_json) under fuzzing:
any text or bytes give a valid config or a ConfigError with a short message, quickly; round trips through
JSON, flat dicts, links and the CLI, bad values refused, valid presets, and K alone saying baseline or
lookahead."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drift_core.cli import main as cli_main
from drift_core.config import INT_RANGES, PRESETS, ConfigError, ExperimentConfig
from drift_core.export import config_json, config_query
from drift_core.images.config import IMAGE_PRESETS, ImageExperimentConfig
from drift_core.limits import config_from_query
from tests.configs_support import TINY
from tests.fuzz_support import fuzz_settings, mutated

CLASSES = [ExperimentConfig, ImageExperimentConfig]
VALID = [c.to_json().encode() for c in list(PRESETS.values()) + list(IMAGE_PRESETS.values())]

_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


def _flat_edits(config_class):
    """A dict of some of the config's own field names (nested by section or flat) with fuzzed values."""
    default = config_class().to_dict()
    names = [(section, name) for section, values in default.items() for name in values]
    return st.lists(st.tuples(st.sampled_from(names), _JSON, st.booleans()), max_size=6)


def _check(config_class, text) -> None:
    try:
        cfg = config_class.from_json(text)
    except ConfigError as err:
        assert str(err) and len(str(err)) < 600, err
        return
    cfg.validate()
    assert config_class.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("config_class", CLASSES)
@fuzz_settings(max_examples=100)
@given(data=st.one_of(st.binary(max_size=512), st.text(max_size=256), st.sampled_from(VALID).flatmap(mutated)))
def test_random_and_mutated_json_is_a_config_or_a_config_error(config_class, data):
    _check(config_class, data)
    if isinstance(data, bytes):
        _check(config_class, data.decode("latin-1"))


@pytest.mark.parametrize("config_class", CLASSES)
@fuzz_settings(max_examples=100)
@given(data=st.data())
def test_configs_with_fuzzed_values_are_valid_or_refused(config_class, data):
    document = config_class().to_dict()
    for (section, name), value, flat in data.draw(_flat_edits(config_class)):
        if flat:
            document[name] = value
        else:
            document[section][name] = value
    _check(config_class, json.dumps(document))
    _check(config_class, json.dumps(data.draw(_JSON)))


@pytest.mark.parametrize(
    "text, words",
    [
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ('{"train": {"seed": ' + "9" * 5000 + "}}", "not valid JSON"),
        ('{"train": {"seed": ' + "9" * 25 + "}}", "seed must be between 0 and 2,147,483,647"),
        ('{"model": {"width": 1e300}}', "width must be between"),
        ('{"model": {"depth": 100000000000000000000}}', "depth must be between"),
        ('{"drift": {"tau": NaN}}', "tau must be a finite number"),
        ('{"train": {"lr": Infinity}}', "lr must be a finite number"),
        ('{"data": {"dataset": "' + "d" * 100_000 + '"}}', "dataset must be one of"),
        ("", "not valid JSON"),
        ("\xff\xfe", "not valid JSON"),
        ("[]", "must be an object"),
        (" " * 2_000_000, "too large"),
    ],
)
def test_hostile_json_is_refused_with_a_short_message(text, words):
    two_d_only = '"width"' in text or '"depth"' in text  # the image models have no width or depth
    for config_class in [ExperimentConfig] if two_d_only else CLASSES:
        with pytest.raises(ConfigError, match=words) as err:
            config_class.from_json(text)
        assert len(str(err.value)) < 400


def test_binary_config_bytes_are_a_config_error():
    with pytest.raises(ConfigError, match="not UTF-8"):
        ExperimentConfig.from_json(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert ExperimentConfig.from_json(b"\xef\xbb\xbf" + VALID[0]) == PRESETS["playground"]  # a BOM is fine


@pytest.mark.parametrize("name", sorted(INT_RANGES))
def test_every_integer_has_a_range_that_keeps_torch_safe(name):
    lo, hi = INT_RANGES[name]
    with pytest.raises(ConfigError, match=f"{name} must be between"):
        ExperimentConfig().with_values({name: hi + 1})
    with pytest.raises(ConfigError, match=f"{name} must be between"):
        ExperimentConfig().with_values({name: lo - 1})


# ---- kernels, particle mode, dimensions: one field per fact -------------------------------------------


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"kernel": "cauchy"}, "kernel must be one of"),
        ({"affinity_floor": 1.0}, "affinity_floor"),
        ({"affinity_floor": -1e-6}, "affinity_floor"),
        ({"mode": "both"}, "mode must be one of"),
        ({"particle_step": 0}, "particle_step"),
        ({"particle_step": -1}, "particle_step"),
        ({"dimension": 1}, "dimension must be between 2 and 64"),
        ({"dimension": 65}, "dimension must be between 2 and 64"),
        ({"embedding_noise": -0.1}, "embedding_noise"),
        ({"embedding_noise": 2.0}, "embedding_noise"),
    ],
)
def test_the_new_fields_refuse_bad_values_with_the_reason(bad, words):
    with pytest.raises(ConfigError, match=words):
        ExperimentConfig().with_values(bad)


def test_the_new_fields_round_trip_and_say_whether_they_apply_live():
    from drift_core.config import LIVE_FIELDS, RESET_FIELDS

    cfg = ExperimentConfig().with_values(
        {
            "kernel": "gaussian",
            "affinity_floor": "1e-6",
            "mode": "particles",
            "particle_step": "0.5",
            "dimension": "16",
            "embedding_noise": "0.02",
        }
    )
    assert ExperimentConfig.from_json(cfg.to_json()) == cfg and ExperimentConfig().with_values(cfg.to_query()) == cfg
    assert {"kernel", "affinity_floor", "particle_step"} <= LIVE_FIELDS
    assert {"mode", "dimension", "embedding_noise"} <= RESET_FIELDS
    defaults = ExperimentConfig()
    assert (defaults.drift.kernel, defaults.drift.affinity_floor, defaults.train.mode, defaults.data.dimension) == (
        "laplace",
        0.0,
        "network",
        2,
    )
    images = ImageExperimentConfig().with_values({"kernel": "gaussian"})  # the drift section is shared
    assert images.drift.kernel == "gaussian"


# ---- round trips, validation and presets ---------------------------------------------------------


def test_json_and_flat_round_trip():
    cfg = ExperimentConfig().with_values({"K": 3, "method": "lookahead", "tau": 0.1, "dataset": "moons"})
    assert ExperimentConfig.from_json(cfg.to_json()) == cfg
    assert ExperimentConfig.from_dict(cfg.to_flat()) == cfg
    assert ExperimentConfig().with_values(cfg.to_query()) == cfg


@pytest.mark.parametrize(
    "bad",
    [
        {"K": "abc"},
        {"tau": -1},
        {"tau": "nan"},
        {"dataset": "nope"},
        {"nosuch": 1},
        {"batch_size": 1},
        {"scaling": "weird"},
        {"multi_temperature": "maybe"},
    ],
)
def test_bad_values_raise(bad):
    with pytest.raises(ConfigError):
        ExperimentConfig().with_values(bad)


def test_presets_are_valid():
    for cfg in PRESETS.values():
        cfg.validate()
    paper = PRESETS["paper_toy_checkerboard"]
    assert (paper.model.width, paper.model.depth, paper.train.batch_size, paper.drift.tau) == (256, 3, 2048, 0.05)


def test_drift_settings_are_checked_once_for_2d_and_images():
    """One DriftConfig.problems serves both experiment configs; only the K bound differs."""
    from dataclasses import replace

    from drift_core.config import DriftConfig, ExperimentConfig
    from drift_core.images.config import ImageExperimentConfig

    bad = DriftConfig(K=12, tau=float("nan"), scaling="sideways")
    found = bad.problems(max_k=8)
    assert any("K must be between 0 and 8" in p for p in found)
    assert any("tau must be finite" in p for p in found) and any("scaling" in p for p in found)
    assert DriftConfig().problems(max_k=8) == []
    assert not any("K must" in p for p in DriftConfig(K=12).problems(max_k=64))
    for config, allowed_k in ((ExperimentConfig(), 64), (ImageExperimentConfig(), 8)):
        with pytest.raises(ConfigError, match=f"K must be between 0 and {allowed_k}"):
            replace(config, drift=replace(config.drift, K=allowed_k + 1)).validate()
        replace(config, drift=replace(config.drift, K=allowed_k)).validate()


def test_k_alone_says_baseline_or_lookahead_and_method_is_still_understood():
    """K = 0 is the baseline; K is the one field. ``method`` in links, config files, checkpoints and
    the CLI still means what it meant."""
    from drift_core.config import ExperimentConfig, flat_field_names

    assert "method" not in flat_field_names() and ExperimentConfig().drift.K == 0
    cfg = ExperimentConfig()
    assert cfg.with_values({"method": "lookahead"}).drift.K == 1
    assert cfg.with_values({"method": "lookahead", "K": 3}).drift.K == 3
    assert cfg.with_values({"K": 3}).with_values({"method": "baseline"}).drift.K == 0
    assert cfg.with_values({"K": 2}).drift.method == "lookahead" and cfg.drift.method == "baseline"
    assert cfg.with_values({"K": 2}).drift.label() == "lookahead K=2"
    old = {"drift": {"method": "baseline", "K": 1, "tau": 0.1}}  # a config JSON written before
    assert ExperimentConfig.from_dict(old).drift.K == 0
    linked, notes = config_from_query(cfg, {"method": "lookahead", "tau": "0.1"})
    assert linked.drift.K == 1 and not notes
    linked, notes = config_from_query(cfg, {"method": "baseline", "K": "4"})
    assert linked.drift.K == 0
    _, notes = config_from_query(cfg, {"method": "sideways"})
    assert any("method" in n for n in notes)
    with pytest.raises(ConfigError, match="method"):
        cfg.with_values({"method": "sideways"})


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


@pytest.mark.parametrize("config_class", CLASSES)
def test_every_field_says_what_it_means_once_for_the_cli_and_the_app(config_class, capsys):
    """Each field's meaning is written once, in its config: ``python -m drift_core settings`` lists every
    field with it, and the commands' typed flags show it as their help."""
    meanings = config_class.meanings()
    assert list(meanings) == list(config_class().to_flat())
    assert all(len(text) > 10 for text in meanings.values()), meanings
    assert cli_main(["settings"] + (["--images"] if config_class is ImageExperimentConfig else [])) == 0
    listed = capsys.readouterr().out
    for name, text in meanings.items():
        assert f"\n{name} = " in "\n" + listed and " ".join(text.split()[:4]) in " ".join(listed.split())
    command = "train-images" if config_class is ImageExperimentConfig else "train"
    with pytest.raises(SystemExit):
        cli_main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--tau TAU " + " ".join(meanings["tau"].split()[:5]) in help_text
