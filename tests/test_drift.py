"""Property tests of the drifting field (drift_core.drift) against an independent loop implementation of
Algorithm 2, and which kernel path and how many CPU threads a call takes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import drift_core._drift_kernel as kernel
from drift_core.drift import (
    MEAN_SQUARE_FLOOR,
    drift_weights,
    drifting_field,
    drifting_field_reference,
    sum_temperatures,
)
from drift_core.lookahead import lookahead_field
from tests.drift_support import _rand
from tests.reference_drift import reference_drift


@pytest.mark.parametrize("n,p,d,tau", [(7, 9, 2, 0.05), (12, 5, 3, 0.5), (6, 6, 2, 2.0), (5, 8, 16, 1.0)])
def test_matches_loop_reference_self_negatives(gen, n, p, d, tau):
    x, y = _rand(gen, n, d, scale=0.3), _rand(gen, p, d, shift=0.2, scale=0.3)
    ours = drifting_field(x, y, tau=tau).v
    ref = torch.tensor(reference_drift(x.tolist(), y.tolist(), None, tau), dtype=torch.float64)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("y_neg", [None, "explicit"])
def test_literal_reference_matches_loop_reference(gen, y_neg):
    """drifting_field_reference (Algorithm 2 on tensors) against the plain-loop oracle."""
    x, y, z = _rand(gen, 9, 2), _rand(gen, 8, 2, shift=1.0), _rand(gen, 6, 2, shift=-0.5)
    neg = None if y_neg is None else z
    ref = torch.tensor(
        reference_drift(x.tolist(), y.tolist(), None if neg is None else neg.tolist(), 0.4), dtype=torch.float64
    )
    torch.testing.assert_close(drifting_field_reference(x, y, neg, tau=0.4).v, ref, rtol=1e-9, atol=1e-12)


def test_drift_weights_give_the_field(gen):
    """V = W+ y_pos - W- y_neg with the weights of drift_weights (the x terms cancel)."""
    x, y = _rand(gen, 12, 2), _rand(gen, 10, 2, shift=0.5)
    w = drift_weights(x, y, tau=0.3, normalize_distance=True)
    torch.testing.assert_close(w.w_pos @ y - w.w_neg @ x, drifting_field(x, y, tau=0.3, normalize_distance=True).v)


def test_matches_loop_reference_explicit_negatives(gen):
    x, y, z = _rand(gen, 6, 2), _rand(gen, 7, 2, shift=1.0), _rand(gen, 5, 2, shift=-0.5)
    ref = torch.tensor(reference_drift(x.tolist(), y.tolist(), z.tolist(), 0.7), dtype=torch.float64)
    torch.testing.assert_close(drifting_field(x, y, z, tau=0.7).v, ref, rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 20),
    p=st.integers(1, 20),
    m=st.integers(1, 20),
    d=st.integers(1, 5),
    tau=st.floats(0.05, 5.0),
    seed=st.integers(0, 10_000),
)
def test_swapping_positives_and_negatives_negates_v(n, p, m, d, tau, seed):
    g = torch.Generator().manual_seed(seed)
    x, yp, yn = _rand(g, n, d), _rand(g, p, d, shift=0.5), _rand(g, m, d, shift=-0.5)
    forward = drifting_field(x, yp, yn, tau=tau)
    backward = drifting_field(x, yn, yp, tau=tau)
    torch.testing.assert_close(forward.v, -backward.v, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(forward.v_pos, backward.v_neg, rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 20),
    p=st.integers(1, 20),
    d=st.integers(1, 4),
    tau=st.floats(0.02, 5.0),
    seed=st.integers(0, 10_000),
)
def test_v_is_zero_when_positives_equal_negatives(n, p, d, tau, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = _rand(g, n, d), _rand(g, p, d, shift=0.3)
    v = drifting_field(x, y, y.clone(), tau=tau).v
    assert v.abs().max() < 1e-12


def test_v_equals_v_pos_minus_v_neg_and_attraction_points_to_data(gen):
    x = _rand(gen, 30, 2, scale=0.1)
    y = _rand(gen, 40, 2, shift=3.0, scale=0.1)
    f = drifting_field(x, y, tau=1.0)
    torch.testing.assert_close(f.v, f.v_pos - f.v_neg)
    toward = y.mean(0) - x
    assert ((f.v_pos * toward).sum(1) > 0).all()


def test_closed_form_sqrt_rowsum_colsum(gen):
    """A_ij = k_ij / sqrt(r_i c_j): the toy notebook's 'bidirectional normalisation'."""
    x, y = _rand(gen, 9, 2), _rand(gen, 11, 2)
    w = drift_weights(x, y, tau=0.8)
    d = torch.cdist(x, torch.cat([y, x]))
    d[:, 11:] += torch.eye(9, dtype=d.dtype) * 1e6
    k = torch.exp(-d / 0.8)
    a = k / torch.sqrt(k.sum(1, keepdim=True) * k.sum(0, keepdim=True))
    torch.testing.assert_close(w.affinity, a)
    torch.testing.assert_close(w.w_pos.sum(1), w.w_neg.sum(1))  # equal row sums: x terms cancel


@pytest.mark.parametrize("block_rows", [1, 3, 17])
def test_blocked_path_equals_unblocked(gen, block_rows):
    x, y = _rand(gen, 40, 2), _rand(gen, 33, 2, shift=0.5)
    full = drifting_field(x, y, tau=0.3, normalize_distance=True)
    blocked = drifting_field(x, y, tau=0.3, normalize_distance=True, block_rows=block_rows)
    torch.testing.assert_close(full.v, blocked.v)


def test_fp32_matches_fp64_and_small_tau_has_no_nan(gen):
    x, y = _rand(gen, 256, 2, scale=0.5), _rand(gen, 256, 2, shift=0.3, scale=0.5)
    v64 = drifting_field(x, y, tau=0.05).v
    v32 = drifting_field(x.float(), y.float(), tau=0.05).v
    assert ((v32.double() - v64).norm() / v64.norm()) < 1e-4
    far = drifting_field(x.float() + 50.0, y.float(), tau=0.005)
    assert torch.isfinite(far.v).all()


def test_multi_temperature_is_sum_of_unit_rms_fields(gen):
    x, y = _rand(gen, 20, 3), _rand(gen, 25, 3, shift=0.4)
    multi = drifting_field(x, y, tau=(0.1, 0.5, 2.0))
    expected = sum(
        drifting_field(x, y, tau=t).v / drifting_field(x, y, tau=t).v.square().mean().sqrt() for t in (0.1, 0.5, 2.0)
    )
    torch.testing.assert_close(multi.v, expected)
    assert multi.raw_rms.shape == (3,)


def test_distance_normalisation_makes_tau_scale_free(gen):
    x, y = _rand(gen, 15, 2), _rand(gen, 18, 2, shift=0.4)
    a = drifting_field(x, y, tau=0.5, normalize_distance=True).v
    b = drifting_field(x * 100, y * 100, tau=0.5, normalize_distance=True).v
    torch.testing.assert_close(b, a * 100)


def test_extra_negatives_weighting(gen):
    x, y, e = _rand(gen, 8, 2), _rand(gen, 9, 2), _rand(gen, 4, 2, shift=2.0)
    with_extra = drifting_field(x, y, tau=0.7, extra_neg=e, extra_neg_weight=1.0).v
    # weight 1: the same as negatives [x; e] with only the x block's self-pairs masked
    ref = torch.tensor(
        reference_drift(x.tolist(), y.tolist(), x.tolist() + e.tolist(), 0.7, mask_diagonal=True), dtype=torch.float64
    )
    torch.testing.assert_close(with_extra, ref, rtol=1e-9, atol=1e-12)
    # the weight multiplies the affinities after the softmaxes: more weight, more repulsion from e
    toward_e = e.mean(0) - x
    push = [
        (drifting_field(x, y, tau=0.7, extra_neg=e, extra_neg_weight=w).v * toward_e).sum() for w in (0.0, 1.0, 4.0)
    ]
    assert push[0] > push[1] > push[2]


def test_affinity_floor_lifts_masked_self_pairs(gen):
    """The official code's floor sqrt(max(row*col, floor)) gives every pair, masked self included,
    an affinity of at least sqrt(floor)."""
    x, y = _rand(gen, 10, 2), _rand(gen, 10, 2, shift=0.2)
    plain = drift_weights(x, y, tau=0.5)
    floored = drift_weights(x, y, tau=0.5, affinity_floor=1e-6)
    assert plain.affinity[:, 10:].diagonal().max() < 1e-100
    assert floored.affinity.min() >= 1e-3 - 1e-15
    big = plain.affinity > 1e-3
    torch.testing.assert_close(plain.affinity[big], floored.affinity[big])


def test_bad_inputs_raise_clear_errors(gen):
    x = _rand(gen, 4, 2)
    with pytest.raises(ValueError, match="temperature"):
        drifting_field(x, x, tau=0.0)
    with pytest.raises(ValueError, match="dimension"):
        drifting_field(x, _rand(gen, 4, 3), tau=1.0)


# ---- kernels and the affinity floor ---------------------------------------------------------------

KERNEL_OPTIONS = [
    dict(kernel="laplace"),
    dict(kernel="gaussian"),
    dict(kernel="laplace", affinity_floor=1e-6),
    dict(kernel="gaussian", affinity_floor=1e-6),
]


@pytest.mark.parametrize("options", KERNEL_OPTIONS, ids=str)
@pytest.mark.parametrize("negatives", ["self", "explicit"])
@pytest.mark.parametrize("d,tau", [(2, 0.3), (3, 1.0), (16, 2.0)])
def test_every_kernel_matches_the_loop_reference(gen, options, negatives, d, tau):
    """Fast path, blocked path and the literal Algorithm 2 against the float64 loops, per kernel/floor."""
    x, y, z = _rand(gen, 11, d, scale=0.5), _rand(gen, 9, d, shift=0.3, scale=0.5), _rand(gen, 7, d, shift=-0.2)
    neg = None if negatives == "self" else z
    ref = torch.tensor(
        reference_drift(x.tolist(), y.tolist(), None if neg is None else neg.tolist(), tau, **options),
        dtype=torch.float64,
    )
    for v in (
        drifting_field(x, y, neg, tau=tau, **options).v,
        drifting_field(x, y, neg, tau=tau, block_rows=4, **options).v,
        drifting_field_reference(x, y, neg, tau=tau, **options).v,
    ):
        torch.testing.assert_close(v, ref, rtol=1e-9, atol=1e-12)


def test_gaussian_affinity_is_the_normalised_squared_exponential(gen):
    """A_ij = k_ij / sqrt(r_i c_j) with k = exp(-d^2 / (2 tau^2)), d the masked distance."""
    x, y = _rand(gen, 9, 2), _rand(gen, 11, 2)
    w = drift_weights(x, y, tau=0.8, kernel="gaussian")
    d = torch.cdist(x, torch.cat([y, x]))
    d[:, 11:] += torch.eye(9, dtype=d.dtype) * 1e6
    k = torch.exp(-d.square() / (2 * 0.8**2))
    torch.testing.assert_close(w.affinity, k / torch.sqrt(k.sum(1, keepdim=True) * k.sum(0, keepdim=True)))
    laplace = drift_weights(x, y, tau=0.8)
    assert (w.affinity - laplace.affinity).abs().max() > 1e-3  # a different kernel, not a relabelling


@settings(max_examples=20, deadline=None)
@given(
    options=st.sampled_from(KERNEL_OPTIONS),
    n=st.integers(2, 16),
    p=st.integers(1, 16),
    m=st.integers(1, 16),
    d=st.integers(1, 5),
    tau=st.floats(0.1, 5.0),
    normalize=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_every_kernel_is_anti_symmetric(options, n, p, m, d, tau, normalize, seed):
    """Swapping positives and negatives negates V (queries not among them), for each kernel and floor."""
    g = torch.Generator().manual_seed(seed)
    x, yp, yn = _rand(g, n, d), _rand(g, p, d, shift=0.5), _rand(g, m, d, shift=-0.5)
    forward = drifting_field(x, yp, yn, tau=tau, normalize_distance=normalize, **options)
    backward = drifting_field(x, yn, yp, tau=tau, normalize_distance=normalize, **options)
    torch.testing.assert_close(forward.v, -backward.v, rtol=1e-9, atol=1e-12)
    loop = reference_drift(x.tolist(), yn.tolist(), yp.tolist(), tau, **options) if not normalize else None
    if loop is not None:
        torch.testing.assert_close(backward.v, torch.tensor(loop, dtype=torch.float64), rtol=1e-9, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    options=st.sampled_from(KERNEL_OPTIONS),
    n=st.integers(1, 16),
    p=st.integers(1, 16),
    d=st.integers(1, 4),
    tau=st.floats(0.05, 5.0),
    seed=st.integers(0, 10_000),
)
def test_every_kernel_gives_zero_when_positives_equal_negatives(options, n, p, d, tau, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = _rand(g, n, d), _rand(g, p, d, shift=0.3)
    assert drifting_field(x, y, y.clone(), tau=tau, **options).v.abs().max() < 1e-12


@pytest.mark.parametrize("kernel", ["laplace", "gaussian"])
def test_attraction_only_is_neither_anti_symmetric_nor_zero_at_p_equal_q(gen, kernel):
    """Where the properties do not hold: V = V+ alone; swapping the sets gives V- (not -V+), and
    identical sets still pull every query towards the data."""
    x, yp, yn = _rand(gen, 12, 2), _rand(gen, 10, 2, shift=0.5), _rand(gen, 10, 2, shift=-0.5)
    forward = drifting_field(x, yp, yn, tau=0.5, attraction_only=True, kernel=kernel)
    backward = drifting_field(x, yn, yp, tau=0.5, attraction_only=True, kernel=kernel)
    assert (forward.v + backward.v).abs().max() > 1e-2
    assert drifting_field(x, yp, yp.clone(), tau=0.5, attraction_only=True, kernel=kernel).v.abs().max() > 1e-2


def test_unknown_kernel_and_bad_floor_raise(gen):
    x = _rand(gen, 4, 2)
    with pytest.raises(ValueError, match="kernel"):
        drifting_field(x, x, tau=1.0, kernel="cauchy")
    with pytest.raises(ValueError, match="affinity_floor"):
        drift_weights(x, x, tau=1.0, affinity_floor=2.0)


# ---- the graph-safe path only where asked ------------------------------------------------------


def test_graph_safe_dispatch_only_inside_its_context(gen, monkeypatch):
    x, y = _rand(gen, 20, 2), _rand(gen, 20, 2)
    calls = []
    original = kernel.graph_safe_field_terms
    monkeypatch.setattr(kernel, "graph_safe_field_terms", lambda *a, **k: calls.append(1) or original(*a, **k))
    drifting_field(x, y, tau=0.1)
    assert calls == [] and not kernel.graph_safe_wanted(x)
    with kernel.graph_safe():
        assert kernel.graph_safe_wanted(x)
        lookahead_field(x, y, K=1, tau=0.1)
    assert calls == [1, 1] and not kernel.graph_safe_wanted(x)


# ---- CPU threads chosen per call ---------------------------------------------------------------


@pytest.fixture
def contended(monkeypatch):
    """A policy that sees two other processes busy on two CPUs (so it chooses one thread), with two
    threads configured; records the thread count each kernel call ran with."""
    from drift_core import runtime

    clock = iter(runtime.CpuSample(wall_s=float(i), busy_s=2.0 * i, own_s=0.0) for i in range(10**6))
    monkeypatch.setattr(runtime, "CPU_THREADS", runtime.CpuThreadPolicy(lambda: next(clock), cpus=2, window_s=0.0))
    seen = []
    original = kernel.field_terms
    monkeypatch.setattr(
        kernel, "field_terms", lambda *a, **k: seen.append(torch.get_num_threads()) or original(*a, **k)
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield seen
    torch.set_num_threads(before)


def test_contention_gives_one_thread_and_the_same_bits_for_low_dimensions(gen, contended):
    from drift_core import runtime

    x, y = _rand(gen, 700, 2, dtype=torch.float32), _rand(gen, 650, 2, shift=0.3, dtype=torch.float32)
    adaptive = [
        drifting_field(x, y, tau=0.05).v,
        drifting_field(x, y, tau=(0.02, 0.05, 0.2), normalize_distance=True).v,
        lookahead_field(x, y, K=2, tau=0.05).v,
    ]
    assert contended and set(contended) == {1} and torch.get_num_threads() == 2
    contended.clear()
    with runtime.fixed_cpu_threads():
        fixed = [
            drifting_field(x, y, tau=0.05).v,
            drifting_field(x, y, tau=(0.02, 0.05, 0.2), normalize_distance=True).v,
            lookahead_field(x, y, K=2, tau=0.05).v,
        ]
    assert set(contended) == {2}
    for a, b in zip(adaptive, fixed):
        assert torch.equal(a, b)  # the thread count changes the speed, not a bit of the result


def test_high_dimensions_keep_the_configured_threads(gen, contended):
    x, y = _rand(gen, 50, 16, dtype=torch.float32), _rand(gen, 40, 16, dtype=torch.float32)
    drifting_field(x, y, tau=1.0)
    assert contended == [2]


def test_normalising_floors_the_mean_square_as_the_official_code_does():
    """Each temperature's field is divided by sqrt(max(mean square, 1e-8)): a field of RMS 1e-6 comes out
    at RMS 1e-2 (not blown up to 1), one of RMS 0.3 at exactly 1."""
    v = torch.randn(64, 2, dtype=torch.float64)
    v = v / v.square().mean().sqrt()
    for rms, expected in ((1e-6, 1e-2), (0.3, 1.0)):
        field = sum_temperatures([(rms * v, torch.zeros_like(v))], normalize_drift=True, attraction_only=False)
        assert float(field.v.square().mean().sqrt()) == pytest.approx(expected, rel=1e-9)
        assert float(field.raw_rms[0]) == pytest.approx(rms, rel=1e-9)
    assert MEAN_SQUARE_FLOOR == 1e-8
