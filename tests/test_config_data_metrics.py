"""Config round-trips and validation, toy samplers, point-set loading, 2D metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from drift_core.config import PRESETS, ConfigError, ExperimentConfig
from drift_core.data.points import PointSetError, load_points
from drift_core.data.toy2d import SAMPLERS, mixture_modes, sample
from drift_core.limits import Limits, config_from_query
from drift_core.metrics import energy_distance, mmd2, mode_coverage, sliced_wasserstein, wasserstein2


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


def test_presets_are_valid():
    for cfg in PRESETS.values():
        cfg.validate()
    paper = PRESETS["paper_toy_checkerboard"]
    assert (paper.model.width, paper.model.depth, paper.train.batch_size, paper.drift.tau) == (256, 3, 2048, 0.05)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_are_seeded_and_shaped(name):
    a = sample(name, 300, generator=torch.Generator().manual_seed(5))
    b = sample(name, 300, generator=torch.Generator().manual_seed(5))
    assert a.shape == (300, 2) and a.dtype == torch.float32 and torch.equal(a, b)
    assert torch.isfinite(a).all() and a.abs().max() < 3


def test_checkerboard_occupies_eight_cells():
    pts = sample("checkerboard", 4000, generator=torch.Generator().manual_seed(0))
    cells = {(int(i), int(j)) for i, j in torch.floor((pts.clamp(-0.999, 0.999) + 1) * 2).tolist()}
    assert len(cells) >= 8
    inside = (torch.floor((pts + 1) * 2).long().sum(1) % 2 == 0).float().mean()
    assert inside > 0.8


def test_load_points_good_and_bad():
    pts = load_points(b"x,y\n0,0\n1,1\n2,0.5\n")
    assert pts.shape == (3, 2)
    bad = {
        b"": "empty",
        b"1,2\n4\n": "at least 2 columns",
        b"a,b\nc,d\n1,2\n": "two numeric columns",
        b"1,2\nnan,3\n": "NaN",
        b"1,2\n": "at least",
        b"\x00\x01\x02binary": "binary",
        b"\xff\xfe\xfa": "UTF-8",
    }
    for content, words in bad.items():
        with pytest.raises(PointSetError, match=words):
            load_points(content)
    with pytest.raises(PointSetError, match="too many"):
        load_points("\n".join("1,2" for _ in range(200_002)))
    with pytest.raises(PointSetError, match="shape"):
        load_points(np.zeros((3, 3)))


def test_metrics_against_independent_computations():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 2, generator=g), torch.randn(280, 2, generator=g) + 0.5
    # energy distance vs a direct double loop over a subset
    xs, ys = x[:30].double(), y[:25].double()

    def mean_d(a, b):
        return sum(float((ai - bj).norm()) for ai in a for bj in b) / (len(a) * len(b))

    assert math.isclose(energy_distance(xs, ys), 2 * mean_d(xs, ys) - mean_d(xs, xs) - mean_d(ys, ys), rel_tol=1e-9)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert mmd2(x, y) > mmd2(x[:150], x[150:])
    # sliced W2 of a pure translation by t along the diagonal: average of (t.u)^2 over u = |t|^2/2
    t = torch.tensor([0.3, 0.4])
    assert sliced_wasserstein(x, x + t, n_angles=1024) == pytest.approx(math.sqrt(0.25 / 2), rel=1e-3)
    # exact W2 of a translation is |t|
    assert wasserstein2(x[:200], x[:200] + t) == pytest.approx(0.5, rel=1e-6)


def test_mode_coverage():
    modes = mixture_modes("8gaussians")
    g = torch.Generator().manual_seed(0)
    full = sample("8gaussians", 2000, generator=g)
    cov = mode_coverage(full, modes, 0.05)
    assert cov.covered == 8 and cov.high_quality > 0.95
    half = modes[:4][torch.randint(0, 4, (2000,), generator=g)]
    assert mode_coverage(half, modes, 0.05).covered == 4


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


# ---- point files as real tools write them ---------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "x,y\r0.5,1\r-1,2\r3,4\r",  # classic Mac line endings
        "x\ty\n0.5\t1\n-1\t2\n3\t4\n",  # tab-separated
        "x;y\r\n0.5;1\r\n-1;2\r\n3;4\r\n",  # semicolons, Windows line endings
        "0.5 1\n-1   2\n3 4\n",  # whitespace, no header
        '"x","y"\n"0.5","1"\n"-1","2"\n"3","4"\n',  # quoted
        "# exported\nx,y,\n0.5,1,\n-1,2,\n3,4,\n",  # a comment and trailing delimiters
    ],
)
def test_point_files_in_any_common_dialect_load(text):
    points = load_points(text)
    assert points.tolist() == [[0.5, 1.0], [-1.0, 2.0], [3.0, 4.0]]


def test_point_files_with_a_bom_or_label_columns_say_which_columns_were_used():
    rows = "label,y,x,weight\na,1,0.5,9\nb,2,-1,9\nc,4,3,9\n"
    notes: list[str] = []
    assert load_points(rows, notes=notes).tolist() == [[0.5, 1.0], [-1.0, 2.0], [3.0, 4.0]]
    assert notes == ["used columns 'x' and 'y' of 4 as x and y"]
    notes.clear()
    assert load_points("id,a,b\n7,0.5,1\n8,-1,2\n", notes=notes).tolist() == [[7.0, 0.5], [8.0, -1.0]]
    notes.clear()
    assert load_points("name;p;q\nu;0.5;1\nv;-1;2\n", notes=notes).tolist() == [[0.5, 1.0], [-1.0, 2.0]]
    assert notes == ["used columns 'p' and 'q' of 3 as x and y"]
    for encoded in ("x,y\n1,2\n3,4\n".encode("utf-16"), "\ufeffx,y\n1,2\n3,4\n".encode("utf-8")):
        assert load_points(encoded).tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_bad_point_files_are_refused_with_the_line():
    with pytest.raises(PointSetError, match="line 3"):
        load_points("x,y\n1,2\n3,oops\n")
    with pytest.raises(PointSetError, match="line 2"):
        load_points("x,y\n" + "1" * 200_000 + ",2\n")  # one field beyond the csv module's limit
    with pytest.raises(PointSetError, match="two numeric columns"):
        load_points("a,b\nx,y\n")


def test_metrics_refuse_degenerate_samples_with_a_value_error():
    """Empty samples, one-point samples for the unbiased MMD, zero angles and no modes were a
    ZeroDivisionError ("float division by zero" in exact W2, sliced W2), an IndexError or a silent NaN."""
    from drift_core.metrics import energy_distance, mmd2, mode_coverage, sliced_wasserstein, wasserstein2

    two, none = torch.randn(2, 2), torch.zeros(0, 2)
    cases = [
        (lambda: wasserstein2(none, two), "at least 1 point"),
        (lambda: energy_distance(two, none), "at least 1 point"),
        (lambda: sliced_wasserstein(none, two), "at least 1 point"),
        (lambda: sliced_wasserstein(two, two, 0), "at least one angle"),
        (lambda: mmd2(two[:1], two), "at least 2 point"),
        (lambda: mmd2(two, two, bandwidths=(0.0,)), "positive bandwidths"),
        (lambda: mode_coverage(two, none, 0.1), "at least 1 point"),
        (lambda: energy_distance(two, torch.zeros(2, 3)), "same|\\[N, D\\]"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError, match=words):
            call()
    same = torch.zeros(3, 2)  # a zero-width spread is fine: every distance is 0
    assert (
        energy_distance(same, same) == 0.0 and sliced_wasserstein(same, same) == 0.0 and wasserstein2(same, same) == 0.0
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(1, 40), st.integers(0, 2**16))
def test_a_measured_reference_sample_gives_the_same_metrics(n, m, angles, seed):
    """ReferenceSample computes the reference's own terms once; the results equal the plain functions."""
    from drift_core.metrics import ReferenceSample

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 2, generator=g), torch.randn(m, 2, generator=g) * 0.5 + 0.3
    measured = ReferenceSample.of(y, angles)
    assert measured.energy_distance(x) == pytest.approx(energy_distance(x, y), rel=1e-12, abs=1e-12)
    assert measured.sliced_wasserstein(x) == pytest.approx(sliced_wasserstein(x, y, angles), rel=1e-12, abs=1e-12)
