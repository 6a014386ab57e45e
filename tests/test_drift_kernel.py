"""The fast, chunked, blocked, compiled and graph-safe paths of the drift kernel (drift_core/_drift_kernel.py)
agree with the literal Algorithm 2 (drifting_field_reference) and with the independent loop reference;
correctness only (speed lives in benchmarks/)."""

from __future__ import annotations

import pytest
import torch

import drift_core._drift_kernel as kernel
from drift_core._drift_kernel import _dense_kernel
from drift_core.drift import SELF_MASK_DISTANCE, compiled_drifting_field, drifting_field, drifting_field_reference
from tests.drift_support import _rand
from tests.reference_drift import reference_drift


def literal_v(x, y_pos, y_neg=None, **options):
    """V [N, D] of the literal Algorithm 2."""
    return drifting_field_reference(x, y_pos, y_neg, **options).v


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300))


@pytest.fixture
def small_chunks(monkeypatch):
    """Force several chunks and the recompute (not kept) second pass on small problems."""
    monkeypatch.setattr(kernel, "CHUNK_ELEMENTS", 64)
    monkeypatch.setattr(kernel, "DEFAULT_BLOCK_ELEMENTS", 200)
    monkeypatch.setattr(kernel, "KEEP_ELEMENTS", 16)


@pytest.mark.parametrize("d", [1, 2, 3, 8])
@pytest.mark.parametrize("block_rows", [None, 1, 7, 64, 1000])
def test_fast_and_blocked_match_literal_fp64(gen, d, block_rows):
    x, y = _rand(gen, 45, d, scale=0.4), _rand(gen, 38, d, shift=0.3, scale=0.4)
    literal = literal_v(x, y, tau=0.1)
    fast = drifting_field(x, y, tau=0.1, block_rows=block_rows)
    torch.testing.assert_close(fast.v, literal, rtol=1e-9, atol=1e-12)


def test_recompute_path_matches_kept_path(gen, small_chunks):
    x, y, z = _rand(gen, 50, 2), _rand(gen, 41, 2, shift=0.5), _rand(gen, 33, 2, shift=-0.5)
    problem = kernel._Problem(x, y, z, None, False, False, SELF_MASK_DISTANCE)
    assert not kernel._keep_kernel(problem, None) and kernel._chunk_rows(problem, None) < 50
    ref = torch.tensor(reference_drift(x.tolist(), y.tolist(), z.tolist(), 0.3), dtype=torch.float64)
    torch.testing.assert_close(drifting_field(x, y, z, tau=0.3).v, ref, rtol=1e-9, atol=1e-12)
    ref_self = torch.tensor(reference_drift(x.tolist(), y.tolist(), None, 0.3), dtype=torch.float64)
    torch.testing.assert_close(drifting_field(x, y, tau=0.3).v, ref_self, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("block_rows", [None, 5, 13])
def test_options_agree_between_kept_and_blocked(gen, block_rows):
    """Self-masking, extra negatives, distance normalisation and several temperatures."""
    x, y, e = _rand(gen, 40, 2), _rand(gen, 36, 2, shift=0.4), _rand(gen, 9, 2, shift=2.0)
    opts = dict(tau=(0.05, 0.2, 0.8), normalize_distance=True, extra_neg=e, extra_neg_weight=0.5)
    unblocked = drifting_field(x, y, **opts)
    other = drifting_field(x, y, block_rows=block_rows, **opts)
    torch.testing.assert_close(other.v, unblocked.v, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(other.raw_rms, unblocked.raw_rms, rtol=1e-9, atol=1e-12)
    # independent check of the extra-negative weighting: weight 1 == negatives [x; e], pairs i masked
    one = drifting_field(x, y, tau=0.3, extra_neg=e, extra_neg_weight=1.0, block_rows=block_rows).v
    loop = torch.tensor(
        reference_drift(x.tolist(), y.tolist(), x.tolist() + e.tolist(), 0.3, mask_diagonal=True), dtype=torch.float64
    )
    torch.testing.assert_close(one, loop, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("block_rows", [None, 7])
def test_every_option_matches_the_reference(gen, block_rows):
    """drifting_field == drifting_field_reference, field by field, for each option of the signature."""
    x, y, z, e = (
        _rand(gen, 30, 2),
        _rand(gen, 27, 2, shift=0.4),
        _rand(gen, 30, 2, shift=-0.3),
        _rand(gen, 6, 2, shift=2.0),
    )
    for args, opts in (
        ((x, y), dict(tau=(0.05, 0.2, 0.8), normalize_distance=True, extra_neg=e, extra_neg_weight=0.5)),
        ((x, y), dict(tau=(0.1, 0.4), normalize_drift=False)),
        ((x, y, z), dict(tau=0.3, mask_diagonal=True)),
        ((x, y, z), dict(tau=0.3, attraction_only=True)),
        ((x, y), dict(tau=0.2, affinity_floor=1e-6, normalize_distance=True)),
    ):
        fast = drifting_field(*args, block_rows=block_rows, **opts)
        ref = drifting_field_reference(*args, **opts)
        for name in ("v", "v_pos", "v_neg", "raw_rms"):
            torch.testing.assert_close(
                getattr(fast, name), getattr(ref, name), rtol=1e-9, atol=1e-12, msg=f"{name} {opts}"
            )


def test_normalize_distance_equals_literal_with_scaled_tau(gen, small_chunks):
    """Distances divided by their mean (self-pairs included, unmasked) == tau multiplied by it."""
    x, y = _rand(gen, 30, 2, scale=2.0), _rand(gen, 25, 2, shift=1.0, scale=2.0)
    mean = torch.cdist(x, torch.cat([y, x])).mean()
    ours = drifting_field(x, y, tau=0.2, normalize_distance=True).v
    literal = literal_v(x / mean, y / mean, tau=0.2) * mean  # V scales with the points
    # the reference without normalisation masks self-pairs with 1e6 (raw units), the normalised path with 100:
    # both give exp(...) = 0
    torch.testing.assert_close(ours, literal, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("block_rows", [None, 16])
def test_fp32_matches_fp64_reference_to_1e4(gen, block_rows):
    for tau, spread in ((0.05, 0.5), (0.2, 1.0), (0.01, 0.3)):
        x, y = _rand(gen, 512, 2, scale=spread), _rand(gen, 512, 2, shift=0.3, scale=spread)
        v64 = literal_v(x, y, tau=tau)
        v32 = drifting_field(x.float(), y.float(), tau=tau, block_rows=block_rows).v
        assert v32.dtype == torch.float32
        assert _rel(v32, v64) < 1e-4, (tau, _rel(v32, v64))


def test_underflowing_columns_are_recomputed_exactly(gen, monkeypatch):
    """Columns far from every query (tiny tau) have sums below fp32's range relative to the largest
    logit: they take the exact column logsumexp, and the result matches the fp64 literal form."""
    calls = []
    original = kernel._exact_column_lse
    monkeypatch.setattr(
        kernel, "_exact_column_lse", lambda g, ws, cols: calls.append(cols.numel()) or original(g, ws, cols)
    )
    x = _rand(gen, 64, 2, scale=0.05)
    y = torch.cat([_rand(gen, 40, 2, scale=0.05), _rand(gen, 24, 2, shift=1.5, scale=0.05)])
    for block_rows in (None, 10):
        v32 = drifting_field(x.float(), y.float(), tau=0.02, block_rows=block_rows).v
        v64 = literal_v(x, y, tau=0.02)
        assert torch.isfinite(v32).all()
        assert _rel(v32, v64) < 1e-4
        torch.testing.assert_close(drifting_field(x, y, tau=0.02, block_rows=block_rows).v, v64, rtol=1e-9, atol=1e-12)
    assert calls and all(c >= 24 for c in calls)


@pytest.mark.parametrize("tau", [0.05, 0.005])
def test_far_away_points_and_small_tau_give_finite_correct_fields(gen, tau):
    """Every target ~8 units from the queries: logits -160 (tau 0.05, below fp32's exp range) to
    -1600 (tau 0.005, below fp64's), so the unnormalised kernel is all zeros and a form without
    log-domain normalisation gives 0/0. Ours is finite and equals the fp64 softmax form."""
    x = _rand(gen, 96, 2, scale=0.3)
    y_pos = _rand(gen, 80, 2, scale=0.3) + torch.tensor([8.0, 0.0], dtype=torch.float64)
    y_neg = _rand(gen, 70, 2, scale=0.3) + torch.tensor([8.0, 0.4], dtype=torch.float64)
    targets = torch.cat([y_pos, y_neg])
    assert float(torch.exp(-torch.cdist(x.float(), targets.float()) / tau).max()) == 0.0
    v64 = literal_v(x, y_pos, y_neg, tau=tau)
    assert torch.isfinite(v64).all()
    for block_rows in (None, 9):
        ours64 = drifting_field(x, y_pos, y_neg, tau=tau, block_rows=block_rows).v
        torch.testing.assert_close(ours64, v64, rtol=1e-7, atol=1e-12 * float(v64.abs().max()))
        v32 = drifting_field(x.float(), y_pos.float(), y_neg.float(), tau=tau, block_rows=block_rows)
        assert torch.isfinite(v32.v).all() and torch.isfinite(v32.v_pos).all() and torch.isfinite(v32.raw_rms).all()
        if tau == 0.05:
            assert v64.abs().max() > 1e-3
            assert _rel(v32.v, v64) < 1e-3  # fp32 distances ~8 carry ~5e-7 error: ~1e-5 in the logits
    far = drifting_field(x.float() + 50.0, y_pos.float(), tau=tau)  # self-negatives, data 50 units away
    assert torch.isfinite(far.v).all()


def test_wide_factor_range_uses_the_explicit_form(gen, monkeypatch):
    """Far-apart clusters at small tau: the factored alpha*beta form would overflow, so A is formed
    explicitly; still equal to the literal form."""
    decisions = []
    original = kernel._factored_form_is_safe
    monkeypatch.setattr(kernel, "_factored_form_is_safe", lambda *a: decisions.append(original(*a)) or decisions[-1])
    x = torch.cat([_rand(gen, 20, 2, scale=0.1), _rand(gen, 20, 2, shift=6.0, scale=0.1)])
    y = torch.cat([_rand(gen, 20, 2, shift=0.2, scale=0.1), _rand(gen, 20, 2, shift=-6.0, scale=0.1)])
    v64 = literal_v(x, y, tau=0.01)
    for block_rows in (None, 6):
        torch.testing.assert_close(drifting_field(x, y, tau=0.01, block_rows=block_rows).v, v64, rtol=1e-9, atol=1e-12)
        decisions.clear()
        assert _rel(drifting_field(x.float(), y.float(), tau=0.01, block_rows=block_rows).v, v64) < 1e-4
        assert decisions == [False]  # fp32: ~600 nats of factor range do not fit
    decisions.clear()
    drifting_field(x.float(), y.float(), tau=0.5)
    assert decisions == [True]


def test_affinity_floor_agrees_between_paths(gen):
    x, y = _rand(gen, 30, 2), _rand(gen, 26, 2, shift=0.3)
    full = drifting_field(x, y, tau=0.2, affinity_floor=1e-6)
    blocked = drifting_field(x, y, tau=0.2, affinity_floor=1e-6, block_rows=4)
    torch.testing.assert_close(blocked.v, full.v, rtol=1e-9, atol=1e-12)
    assert _rel(full.v, drifting_field(x, y, tau=0.2).v) > 1e-6  # the floor changes the field


def test_high_dimension_matmul_distance_form(gen):
    """D = 64 uses the matmul form on centred points; far from the origin it stays accurate."""
    x, y = _rand(gen, 40, 64, shift=30.0), _rand(gen, 44, 64, shift=30.2)
    v64 = literal_v(x, y, tau=5.0)
    torch.testing.assert_close(drifting_field(x, y, tau=5.0).v, v64, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(drifting_field(x, y, tau=5.0, block_rows=7).v, v64, rtol=1e-8, atol=1e-10)
    assert _rel(drifting_field(x.float(), y.float(), tau=5.0).v, v64) < 1e-4


@pytest.mark.parametrize("mask", [True, False])
def test_dense_kernel_of_the_compile_path_matches_eager(gen, mask):
    """The function torch.compile fuses (run eagerly here) equals the fast path."""
    x, y = _rand(gen, 24, 2), _rand(gen, 30, 2, shift=0.2)
    targets = torch.cat([y, x])
    v_pos, v_neg = _dense_kernel(x, targets, 30, 1 / 0.3, 1e6 / 0.3, mask)
    field = drifting_field(x, y, x, tau=0.3, mask_diagonal=mask)
    torch.testing.assert_close(v_pos - v_neg, field.v, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(v_pos, field.v_pos, rtol=1e-9, atol=1e-12)


def test_compiled_entry_point_matches_eager_with_options(gen, monkeypatch):
    """compiled_drifting_field's plumbing (distance normalisation, temperatures, masks, fallbacks),
    with the dense kernel run eagerly in place of its torch.compile'd version."""
    monkeypatch.setitem(kernel._COMPILED, "dense", _dense_kernel)
    x, y, e = _rand(gen, 28, 2), _rand(gen, 31, 2, shift=0.3), _rand(gen, 5, 2, shift=1.0)
    for opts in (
        dict(tau=0.2),
        dict(tau=(0.05, 0.2, 0.8), normalize_distance=True),
        dict(tau=0.3, attraction_only=True),
        dict(tau=0.3, extra_neg=e, extra_neg_weight=2.0),
        dict(tau=0.3, affinity_floor=1e-6),
    ):
        ours = compiled_drifting_field(x, y, **opts)
        ref = drifting_field(x, y, **opts)
        torch.testing.assert_close(drifting_field(x, y, compile=True, **opts).v, ours.v, rtol=0, atol=0)
        torch.testing.assert_close(ours.v, ref.v, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(ours.raw_rms, ref.raw_rms, rtol=1e-9, atol=1e-12)


def test_rows_with_underflowing_entries_match_fp64(gen):
    """Two clusters 6 apart at tau = 0.02: every row holds entries 300 nats below its largest, where
    the kernel clamps exp's argument (exp's slow underflow path) instead of underflowing. fp32 still
    equals the fp64 literal form."""
    offset = torch.tensor([6.0, 0.0], dtype=torch.float64)
    x = torch.cat([_rand(gen, 60, 2, scale=0.5), _rand(gen, 60, 2, scale=0.5) + offset])
    y = torch.cat([_rand(gen, 50, 2, scale=0.5, shift=0.1), _rand(gen, 70, 2, scale=0.5, shift=0.1) + offset])
    v64 = literal_v(x, y, tau=0.02)
    for block_rows in (None, 16):
        v32 = drifting_field(x.float(), y.float(), tau=0.02, block_rows=block_rows).v
        assert _rel(v32, v64) < 1e-4


def test_scratch_buffers_are_never_shared_with_results_or_threads(gen):
    """CPU scratch memory is reused between calls of one thread: an earlier result must not change
    when the next call reuses the buffers, and concurrent threads must not see each other's."""
    import threading

    problems = [
        (_rand(gen, 300, 2, dtype=torch.float32), _rand(gen, 280, 2, shift=0.5, dtype=torch.float32)) for _ in range(4)
    ]
    expected = [literal_v(x.double(), y.double(), tau=0.1) for x, y in problems]
    first = drifting_field(*problems[0], tau=0.1).v
    kept = first.clone()
    drifting_field(*problems[1], tau=0.1)
    torch.testing.assert_close(first, kept, rtol=0, atol=0)

    results, errors = {}, []

    def work(i):
        try:
            for _ in range(5):
                results[i] = drifting_field(*problems[i], tau=0.1).v
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        assert _rel(results[i], expected[i]) < 1e-4


# ---- the graph-safe kernel (captured CUDA step) ------------------------------------------------


@pytest.mark.parametrize("d", [2, 8])
def test_graph_safe_kernel_matches_the_reference_for_every_option(gen, d):
    x, y, z, e = (
        _rand(gen, 30, d),
        _rand(gen, 27, d, shift=0.4),
        _rand(gen, 30, d, shift=-0.3),
        _rand(gen, 6, d, shift=2.0),
    )
    cases = (
        ((x, y), dict(tau=(0.05, 0.2, 0.8), normalize_distance=True, extra_neg=e, extra_neg_weight=0.5)),
        ((x, y), dict(tau=(0.1, 0.4), normalize_drift=False)),
        ((x, y, z), dict(tau=0.3, mask_diagonal=True)),
        ((x, y, z), dict(tau=0.3)),
        ((x, y), dict(tau=0.3, attraction_only=True)),
        ((x, y), dict(tau=0.02, affinity_floor=1e-6)),
    )
    for args, opts in cases:
        ref = drifting_field_reference(*args, **opts)
        with kernel.graph_safe():
            safe = drifting_field(*args, **opts)
        for name in ("v", "v_pos", "v_neg", "raw_rms"):
            torch.testing.assert_close(getattr(safe, name), getattr(ref, name), rtol=1e-9, atol=1e-12)


def test_graph_safe_kernel_is_exact_where_probabilities_underflow(gen):
    """Far-apart clusters at a small tau in fp32: the log-domain form stays finite and equals fp64."""
    offset = torch.tensor([6.0, 0.0], dtype=torch.float64)
    x = torch.cat([_rand(gen, 40, 2, scale=0.5), _rand(gen, 40, 2, scale=0.5) + offset])
    y = torch.cat([_rand(gen, 30, 2, scale=0.5, shift=0.1), _rand(gen, 50, 2, scale=0.5, shift=0.1) + offset])
    with kernel.graph_safe():
        v32 = drifting_field(x.float(), y.float(), tau=0.02).v
    assert torch.isfinite(v32).all() and _rel(v32, literal_v(x, y, tau=0.02)) < 1e-4


# ---- the Gaussian kernel on every path ------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 8])
def test_gaussian_kernel_agrees_on_every_path(gen, d, small_chunks, monkeypatch):
    """Kept, recomputed (small chunks), blocked, graph-safe and the compile path's dense kernel (run
    eagerly) equal the literal form for the Gaussian kernel, with every option. (For D > 3 the paths
    take distances in the matmul form, whose self-distances round to ~1e-8 instead of 0: the batch-mean
    distance then differs in the 9th digit, for either kernel.)"""
    monkeypatch.setitem(kernel._COMPILED, "dense", _dense_kernel)
    tolerance = dict(rtol=1e-9, atol=1e-12) if d <= 3 else dict(rtol=1e-6, atol=1e-8)
    x, y, z, e = (
        _rand(gen, 30, d),
        _rand(gen, 27, d, shift=0.4),
        _rand(gen, 30, d, shift=-0.3),
        _rand(gen, 6, d, shift=2.0),
    )
    for args, opts in (
        ((x, y), dict(tau=(0.1, 0.4, 1.6), normalize_distance=True, extra_neg=e, extra_neg_weight=0.5)),
        ((x, y, z), dict(tau=0.5, mask_diagonal=True)),
        ((x, y), dict(tau=0.5, attraction_only=True)),
        ((x, y), dict(tau=0.3, affinity_floor=1e-6)),
        ((x, y), dict(tau=0.4, normalize_distance=True)),
    ):
        ref = drifting_field_reference(*args, kernel="gaussian", **opts)
        with kernel.graph_safe():
            safe = drifting_field(*args, kernel="gaussian", **opts)
        for field in (
            drifting_field(*args, kernel="gaussian", **opts),
            drifting_field(*args, kernel="gaussian", block_rows=7, **opts),
            compiled_drifting_field(*args, kernel="gaussian", **opts),
            safe,
        ):
            for name in ("v", "v_pos", "v_neg", "raw_rms"):
                torch.testing.assert_close(getattr(field, name), getattr(ref, name), **tolerance)


def test_gaussian_kernel_far_apart_and_small_tau_is_finite_and_exact(gen, monkeypatch):
    """The Gaussian's logits fall off quadratically: far-apart clusters at a small tau need the exact
    column sums and the explicit form more often; fp32 stays finite and equal to fp64."""
    decisions = []
    original = kernel._factored_form_is_safe
    monkeypatch.setattr(kernel, "_factored_form_is_safe", lambda *a: decisions.append(original(*a)) or decisions[-1])
    offset = torch.tensor([3.0, 0.0], dtype=torch.float64)
    x = torch.cat([_rand(gen, 40, 2, scale=0.3), _rand(gen, 40, 2, scale=0.3) + offset])
    y = torch.cat([_rand(gen, 30, 2, scale=0.3, shift=0.1), _rand(gen, 50, 2, scale=0.3, shift=0.1) - offset])
    v64 = literal_v(x, y, tau=0.1, kernel="gaussian")
    assert torch.isfinite(v64).all() and v64.abs().max() > 1e-3
    for block_rows in (None, 16):
        torch.testing.assert_close(
            drifting_field(x, y, tau=0.1, kernel="gaussian", block_rows=block_rows).v, v64, rtol=1e-9, atol=1e-12
        )
        v32 = drifting_field(x.float(), y.float(), tau=0.1, kernel="gaussian", block_rows=block_rows).v
        assert torch.isfinite(v32).all() and _rel(v32, v64) < 1e-4
    assert False in decisions  # fp32: the factor range does not fit, A is formed explicitly


def test_laplace_kernel_keeps_the_factored_one_exp_form(gen, monkeypatch):
    """The kernel option adds nothing to the Laplace kernel's path: one exp per kernel entry and
    the factored form on an ordinary batch (speed: benchmarks/RESULTS.md)."""
    exps = []
    original = torch.Tensor.exp_
    monkeypatch.setattr(torch.Tensor, "exp_", lambda t: exps.append(t.numel()) or original(t))
    decisions = []
    safe = kernel._factored_form_is_safe
    monkeypatch.setattr(kernel, "_factored_form_is_safe", lambda *a: decisions.append(safe(*a)) or decisions[-1])
    x, y = _rand(gen, 64, 2, dtype=torch.float32), _rand(gen, 64, 2, shift=0.3, dtype=torch.float32)
    drifting_field(x, y, tau=0.2, kernel="laplace")
    assert decisions == [True]
    assert sum(n for n in exps if n >= 64 * 128) == 64 * 128  # the [N, P+M] kernel is exponentiated once
