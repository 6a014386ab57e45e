"""The fast kernel behind :func:`drift_core.drift.drifting_field` (private; the specification, the
public functions and the literal Algorithm 2 are in :mod:`drift_core.drift`).

Input: the prepared batch of :func:`drift_core.drift._prepare` (x [N, D], y_pos [P, D], negatives
[M, D] with any extra negatives appended, their column weights, the self-mask flag). Output: for each
temperature the pair (V+, V-), each [N, D], equal to the literal form to fp tolerance.

* q = d / tau >= 0 (the negated logits of the Laplace kernel; q = (d / tau)^2 / 2 for the Gaussian
  kernel, from the same scaled distance with the self-mask added before squaring, as the literal
  form does), one row chunk of queries at a time (``CHUNK_ELEMENTS``). Everything after q is the same
  for both kernels. For D <= 3 the distance is the exact difference form, for larger D the matmul
  form on centred points.
* Row normalisers with **one** exp per entry: E_ij = exp(m_i - q_ij), m_i = min_j q_ij (so E <= 1 and
  every row has an entry 1); r_i = sum_j E_ij; row log-sum-exp lr_i = log r_i - m_i. The negated
  logits, their exp and the kernel share one buffer (in place).
* Column normalisers without a second exp: sum_i exp(-q_ij) = exp(-mu) * (E^T w)_j with
  w_i = exp(mu - m_i), mu = min_i m_i over the chunk (a matrix-vector product), merged over chunks
  with logaddexp. Columns whose sum could have lost mass to fp underflow (lc_j far below the
  largest logit) are recomputed exactly with a column logsumexp; this is rare (far-away points at
  small tau) and keeps the result exact in the log domain.
* A_ij = E_ij * alpha_i * beta_j with log alpha_i = -(m_i + log r_i)/2, log beta_j = -lc_j/2, so the
  weights never need to be materialised: A+ y_pos = alpha * (E+ @ (beta+ y_pos)) and the row sums
  s+/s- are E @ beta. When the factor range could overflow or lose mass (extreme tau and spread) or
  an ``affinity_floor`` is set, A is formed explicitly as exp(-q - lr/2 - lc/2) instead.
* When the N x (P+M) matrix E fits ``KEEP_ELEMENTS`` it is kept between the passes (one distance and
  one exp per entry in all); otherwise (or with ``block_rows``) the second pass recomputes each chunk,
  so peak memory is O(chunk_rows * (P + M)) and N is bounded only by time.
* :func:`compiled_field_terms`: the same result through ``torch.compile`` of a dense kernel.
* :func:`graph_safe_field_terms`: the same result by dense tensor ops without any host
  synchronisation, for capture in a CUDA graph (used while capturing, or inside :func:`graph_safe`).

Measured effects of these choices: benchmarks/RESULTS.md, "What the fast path does".
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

DEFAULT_BLOCK_ELEMENTS = 1 << 24
"""Kernel entries per block when the kernel is not kept (and for the mean-distance pass): 16 Mi
floats = 64 MB per buffer in fp32."""

KEEP_ELEMENTS = 1 << 25
"""Largest N x (P+M) (32 Mi entries = 128 MB in fp32) for which the exp'd kernel is kept between the
two passes; above it (or when ``block_rows`` is given) the second pass recomputes each chunk."""

CHUNK_ELEMENTS = 1 << 20
"""Kernel entries per row chunk (1 Mi = 4 MB in fp32): the distance, min, exp and sums run chunk by
chunk, so a chunk and its scratch (8 MB) stay in a 16 MB last-level cache across the ~10 passes, while
each op is still large enough that per-op overheads stay small (the fastest size measured, see
benchmarks/RESULTS.md). On a GPU one chunk is the whole kept matrix."""

Pair = tuple[Tensor, Tensor]
"""(V+, V-) of one temperature, each [N, D]."""


def _pairwise_distance(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances [A, B]. For D <= 3 the exact difference form (no cancellation for
    points far from the origin); otherwise the matmul form, clamped before the sqrt."""
    if a.shape[1] <= 3:
        return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
    sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return sq.clamp_min_(1e-12).sqrt_()


class _Problem:
    """The prepared inputs of one drift computation: negatives and extra negatives concatenated."""

    def __init__(
        self,
        x: Tensor,
        y_pos: Tensor,
        y_neg: Tensor,
        neg_weight: Tensor | None,
        mask_diagonal: bool,
        normalize_distance: bool,
        mask_distance: float,
        kernel: str = "laplace",
    ):
        self.x, self.y_pos, self.y_neg = x, y_pos, y_neg
        self.gaussian = kernel == "gaussian"  # else the Laplace kernel
        self.neg_weight = neg_weight  # [M] column weights of the negatives, or None (all 1)
        self.mask_diagonal = mask_diagonal
        self.targets = torch.cat([y_pos, y_neg])
        self.n_pos = y_pos.shape[0]
        self.normalize_distance = normalize_distance
        self.mask_distance = mask_distance
        self.distance_scale = 1.0  # set by set_distance_scale() when normalize_distance
        self.difference_form = x.shape[1] <= 3
        if not self.difference_form:
            # matmul form on centred points: distances are translation invariant, cancellation is not
            centre = self.targets.mean(0, keepdim=True)
            self._xc, self._tc = self.x - centre, self.targets - centre

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def n_targets(self) -> int:
        return self.targets.shape[0]

    def column_weights(self) -> Tensor:
        """Weight of every target column [P+M] (1, or ``extra_neg_weight`` on the extra negatives)."""
        w = torch.ones(self.n_targets, dtype=self.x.dtype, device=self.x.device)
        if self.neg_weight is not None:
            w[self.n_pos :] = self.neg_weight
        return w

    def _mean_distance(self) -> float:
        """Weighted mean of all x-to-target distances (self-pairs included), as the official code."""
        n, total, weight = self.x.shape[0], 0.0, 0.0
        rows = max(1, DEFAULT_BLOCK_ELEMENTS // max(1, self.targets.shape[0]))
        w = self.column_weights()
        for start in range(0, n, rows):
            d = _pairwise_distance(self.x[start : start + rows], self.targets)
            total += float((d * w).sum())
            weight += float(w.sum()) * d.shape[0]
        return max(total / weight, 1e-3)

    def set_distance_scale(self, raw_distance: Tensor | None = None) -> None:
        """Batch-mean distance normalisation (from an already computed unmasked [N, P+M] distance
        matrix when given, else by a blocked pass)."""
        if not self.normalize_distance:
            return
        if raw_distance is None:
            self.distance_scale = self._mean_distance()
        else:
            w = self.column_weights()
            total = float(torch.mv(raw_distance, w).sum())
            self.distance_scale = max(total / (float(w.sum()) * self.n), 1e-3)


class _Geometry:
    """Scaled points for one temperature: q = s * ||x - t|| with s = 1 / (tau * distance_scale) (the
    Laplace kernel), or q = (s * ||x - t||)^2 / 2 (the Gaussian kernel; ``gaussian``, default: the
    problem's kernel)."""

    def __init__(self, problem: _Problem, tau: float, gaussian: bool | None = None):
        self.problem = problem
        self.gaussian = problem.gaussian if gaussian is None else gaussian
        self.scale = 1.0 / (tau * problem.distance_scale)
        self.mask_q = problem.mask_distance / tau
        self.cols: Tensor | None = None
        s = self.scale
        if problem.difference_form:
            self.xs = problem.x * s
            self.ts_t = (problem.targets * s).T.contiguous()  # [D, P+M]
        else:
            self.xs = problem._xc * s
            ts = problem._tc * s
            self.ts_t = ts.T.contiguous()
            self.x_sq = self.xs.square().sum(1)
            self.t_sq = ts.square().sum(1)

    def finish(self, scaled_distance: Tensor, start: int, stop: int, mask: bool = True) -> Tensor:
        """In place: the scaled distances s * d of rows start..stop -> q (self-pairs masked unless
        ``mask=False``; the Gaussian kernel's square taken after the mask, as in the literal form)."""
        if mask:
            self._apply_mask(scaled_distance, start, stop)
        if self.gaussian:
            scaled_distance.square_().mul_(0.5)
        return scaled_distance

    def _apply_mask(self, q: Tensor, start: int, stop: int) -> None:
        p = self.problem
        if not p.mask_diagonal:
            return
        if self.cols is None:
            # entries (i - start, n_pos + i) lie on one diagonal of the chunk
            q.diagonal(offset=p.n_pos + start).add_(self.mask_q)
        else:
            # entries (i, c) with c == n_pos + i among the selected columns
            rows = torch.arange(start, stop, device=q.device)
            hit = self.cols[None, :] == (p.n_pos + rows)[:, None]
            q.add_(hit.to(q.dtype), alpha=self.mask_q)

    def columns(self, cols: Tensor) -> _Geometry:
        """The same geometry restricted to the target columns ``cols``."""
        sub = object.__new__(_Geometry)
        sub.__dict__.update(self.__dict__)
        sub.cols = cols
        sub.ts_t = self.ts_t[:, cols].contiguous()
        if not self.problem.difference_form:
            sub.t_sq = self.t_sq[cols]
        return sub

    def q(self, start: int, stop: int, out: Tensor, tmp: Tensor | None, mask: bool = True) -> Tensor:
        """Write q = d / tau (self-pairs masked unless ``mask=False``) of rows start..stop against all
        targets (or this geometry's columns) into ``out`` [rows, P+M or len(cols)]."""
        xs, ts_t = self.xs[start:stop], self.ts_t
        if self.problem.difference_form:
            torch.sub(xs[:, 0:1], ts_t[0], out=out)
            out.square_()
            for k in range(1, xs.shape[1]):
                torch.sub(xs[:, k : k + 1], ts_t[k], out=tmp)
                out.addcmul_(tmp, tmp)
        else:
            torch.addmm(self.t_sq[None, :], xs, ts_t, beta=1.0, alpha=-2.0, out=out)
            out.add_(self.x_sq[start:stop, None]).clamp_min_(0.0)
        out.sqrt_()
        return self.finish(out, start, stop, mask)


def _log_tiny(dtype: torch.dtype) -> float:
    return math.log(torch.finfo(dtype).tiny)


def _chunk_rows(problem: _Problem, block_rows: int | None) -> int:
    if block_rows is not None:
        if block_rows < 1:
            raise ValueError("block_rows must be positive")
        return min(block_rows, problem.n)
    if problem.x.device.type != "cpu":
        # one launch per op over the whole (kept) matrix; bounded like the blocked path otherwise
        return max(1, min(problem.n, DEFAULT_BLOCK_ELEMENTS // max(1, problem.n_targets)))
    # kept kernel: chunks of CHUNK_ELEMENTS; recomputed (large N): bigger blocks of DEFAULT_BLOCK_ELEMENTS
    # (fewer per-chunk column merges, still a bounded few hundred MB)
    per_chunk = CHUNK_ELEMENTS if _keep_kernel(problem, None) else DEFAULT_BLOCK_ELEMENTS
    return max(1, min(problem.n, max(16, per_chunk // max(1, problem.n_targets))))


def _keep_kernel(problem: _Problem, block_rows: int | None) -> bool:
    return block_rows is None and problem.n * problem.n_targets <= KEEP_ELEMENTS


SCRATCH_MAX_BYTES = 1 << 28
"""Scratch memory (256 MB) each thread may keep between CPU calls (see :class:`_ScratchPool`)."""


class _ScratchPool(threading.local):
    """Per-thread CPU scratch buffers kept between calls.

    A fresh large buffer comes from mmap and every one of its pages faults on first write, on every
    call, at a cost comparable to the exp pass. Reusing the buffers
    of the previous call (same thread, so concurrent sessions never share one) removes it. Results
    never alias a scratch buffer. CUDA has its own caching allocator and is not pooled."""

    def __init__(self):
        self.buffers: dict[tuple[str, torch.dtype], Tensor] = {}

    def take(self, name: str, rows: int, cols: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """An uninitialised [rows, cols] tensor; the same memory as the last ``take`` of ``name``."""
        numel = rows * cols
        if device.type != "cpu":
            return torch.empty(rows, cols, dtype=dtype, device=device)
        key = (name, dtype)
        flat = self.buffers.get(key)
        if flat is None or flat.numel() < numel:
            self.buffers.pop(key, None)
            flat = torch.empty(numel, dtype=dtype)
            held = sum(b.numel() * b.element_size() for b in self.buffers.values())
            if held + flat.numel() * flat.element_size() <= SCRATCH_MAX_BYTES:
                self.buffers[key] = flat
        return flat[:numel].view(rows, cols)


_SCRATCH = _ScratchPool()


class _Workspace:
    """Buffers reused across temperatures (and, on the CPU, across calls of the same thread): the
    kept kernel (or one chunk) and a scratch chunk."""

    def __init__(self, problem: _Problem, chunk_rows: int, keep: bool, cache_distance: bool):
        n, t = problem.n, problem.n_targets
        dtype, device = problem.x.dtype, problem.x.device
        self.chunk_rows, self.keep = chunk_rows, keep
        self.kernel = _SCRATCH.take("kernel", n if keep else chunk_rows, t, dtype, device)
        self.tmp = _SCRATCH.take("tmp", chunk_rows, t, dtype, device) if problem.difference_form else None
        self.raw_distance = None
        if cache_distance:
            # unscaled, unmasked distances [N, P+M], shared by all temperatures and the mean distance
            self.raw_distance = _SCRATCH.take("raw_distance", n, t, dtype, device)
            unit = _Geometry(problem, 1.0 / problem.distance_scale, gaussian=False)  # scale 1: the distances
            for start in range(0, n, chunk_rows):
                stop = min(n, start + chunk_rows)
                unit.q(start, stop, self.raw_distance[start:stop], self.tmp_rows(stop - start), mask=False)

    def kernel_rows(self, start: int, stop: int) -> Tensor:
        return self.kernel[start:stop] if self.keep else self.kernel[: stop - start]

    def tmp_rows(self, rows: int) -> Tensor | None:
        return None if self.tmp is None else self.tmp[:rows]


def _fill_q(
    geometry: _Geometry, ws: _Workspace, start: int, stop: int, out: Tensor, tmp: Tensor | None = None
) -> Tensor:
    """q for rows start..stop into ``out``: from the cached raw distances when there are, else computed."""
    if ws.raw_distance is not None:
        raw = ws.raw_distance[start:stop]
        torch.mul(raw if geometry.cols is None else raw[:, geometry.cols], geometry.scale, out=out)
        return geometry.finish(out, start, stop)
    return geometry.q(start, stop, out, ws.tmp_rows(stop - start) if tmp is None else tmp)


def _exp_rows(q: Tensor) -> tuple[Tensor, Tensor]:
    """In place: q -> E = exp(m - q) with m = row min of q. Returns (E, m).

    The exponent is clamped at log(tiny) + 1 first, so E >= e * tiny stays a normal float instead of
    underflowing: ``torch.exp`` on CPU takes a much slower path for results below tiny, which
    far-away points at small tau produce by the million. The change to E is below 3 tiny per entry,
    inside the error bound the column sums allow for (see :func:`_normalisers`)."""
    m = q.amin(1)
    torch.sub(m[:, None], q, out=q)
    return q.clamp_min_(_exp_floor_arg(q.dtype)).exp_(), m


def _exp_floor_arg(dtype: torch.dtype) -> float:
    """Smallest exponent passed to exp: log(tiny) + 1 (exp(log(tiny)) itself rounds below tiny)."""
    return _log_tiny(dtype) + 1.0


def _exact_column_lse(geometry: _Geometry, ws: _Workspace, cols: Tensor) -> Tensor:
    """Column log-sum-exp of the logits -q over all queries, for the selected columns only."""
    problem = geometry.problem
    sub = geometry.columns(cols)
    kw = dict(dtype=problem.x.dtype, device=problem.x.device)
    rows = max(ws.chunk_rows, min(problem.n, CHUNK_ELEMENTS // max(1, cols.numel())))
    out = torch.empty(rows, cols.numel(), **kw)
    tmp = torch.empty(rows, cols.numel(), **kw) if problem.difference_form else None
    parts = []
    for start in range(0, problem.n, rows):
        stop = min(problem.n, start + rows)
        r = stop - start
        q = _fill_q(sub, ws, start, stop, out[:r], None if tmp is None else tmp[:r])
        parts.append(torch.logsumexp(q.neg_(), dim=0))
    return torch.logsumexp(torch.stack(parts), dim=0)


def _normalisers(geometry: _Geometry, ws: _Workspace) -> tuple[Tensor, Tensor, Tensor]:
    """Pass 1. Returns (m [N] row min of q, log r [N] with r = sum_j exp(m - q), lc [P+M] column
    log-sum-exp of the logits -q). With ``ws.keep`` the kernel buffer holds E = exp(m - q) after."""
    problem = geometry.problem
    n, dtype = problem.n, problem.x.dtype
    row_min = torch.empty(n, dtype=dtype, device=problem.x.device)
    log_row = torch.empty_like(row_min)
    col_lse = None
    for start in range(0, n, ws.chunk_rows):
        stop = min(n, start + ws.chunk_rows)
        e, m = _exp_rows(_fill_q(geometry, ws, start, stop, ws.kernel_rows(start, stop)))
        row_min[start:stop] = m
        log_row[start:stop] = e.sum(1).log_()
        # log sum_i exp(-q_ij) over this chunk's rows, shifted by its largest logit, while the chunk
        # is still in cache; chunks merge with logaddexp
        shift = m.min()
        col = torch.mv(e.T, torch.exp(shift - m)).log_().sub_(shift)
        col_lse = col if col_lse is None else torch.logaddexp(col_lse, col)
    # Each product E_ij w_i carries an absolute error below ~3 tiny (relative to its chunk's largest
    # logit); columns whose sum is not far above that bound are recomputed exactly.
    threshold = float(-row_min.min()) + _log_tiny(dtype) + math.log(2.0 * n) + 14.0
    bad = (col_lse < threshold).nonzero().flatten()
    if bad.numel():
        col_lse[bad] = _exact_column_lse(geometry, ws, bad)
    return row_min, log_row, col_lse


def _skinny_matmul(e: Tensor, rhs_t: Tensor) -> Tensor:
    """e [R, C] @ rhs_t.T [C, K] -> [R, K] for a contiguous ``rhs_t`` [K, C].

    The right-hand side is passed as the transposed view on purpose: for small K on the CPU, MKL's
    GEMM with a transposed B is faster than K matrix-vector products or the same GEMM with a
    contiguous [C, K] operand (benchmarks/RESULTS.md, "What the fast path does")."""
    return e @ rhs_t.T


def _combine(problem: _Problem, rows: slice, g_pos: Tensor, g_neg: Tensor, alpha: Tensor | None):
    """(V+, V-) of the rows from G = A @ [y beta, beta] (times alpha when the factored form is used)."""
    d = problem.x.shape[1]
    if alpha is not None:
        g_pos = g_pos * alpha[:, None]
        g_neg = g_neg * alpha[:, None]
    s_pos, s_neg = g_pos[:, d:], g_neg[:, d:]
    x = problem.x[rows]
    # W+ = A+ * s-, W- = A- * s+ ; both rows sum to s+ s-, so the x terms are s+ s- x.
    v_pos = s_neg * (g_pos[:, :d] - s_pos * x)
    v_neg = s_pos * (g_neg[:, :d] - s_neg * x)
    return v_pos, v_neg


def _factored_form_is_safe(log_alpha: Tensor, log_beta: Tensor, affinity_floor) -> bool:
    """A = E alpha beta is exact to ~exp(-30) when max(alpha) max(beta) stays 30 nats inside the
    dtype's range (E's underflow error, below tiny, is then scaled by at most exp(-30)); a floor
    on A cannot be applied to the factored form."""
    bound = -_log_tiny(log_alpha.dtype) - 30.0
    return affinity_floor is None and float(log_alpha.max() + log_beta.max()) <= bound


def _single_temperature(problem: _Problem, tau: float, affinity_floor, ws: _Workspace) -> tuple[Tensor, Tensor]:
    """Un-normalised (V+, V-) for one temperature, each [N, D]."""
    geometry = _Geometry(problem, tau)
    row_min, log_row, col_lse = _normalisers(geometry, ws)
    n, p, dtype = problem.n, problem.n_pos, problem.x.dtype
    col_w = problem.column_weights()
    v_pos = torch.empty_like(problem.x)
    v_neg = torch.empty_like(problem.x)

    log_alpha = -0.5 * (row_min + log_row)  # <= 0
    log_beta = -0.5 * col_lse
    if _factored_form_is_safe(log_alpha, log_beta, affinity_floor):
        # A_ij = E_ij alpha_i beta_j, balanced so that both factors stay in range
        c = 0.5 * float(log_beta.max() - log_alpha.max())
        alpha = (log_alpha + c).exp_()
        beta = (log_beta - c).exp_() * col_w
        rhs = torch.cat([problem.targets * beta[:, None], beta[:, None]], 1).T  # [D+1, P+M]
        rhs_pos, rhs_neg = rhs[:, :p].contiguous(), rhs[:, p:].contiguous()
        starts = range(0, n, ws.chunk_rows)
        # kept: E of these rows as pass 1 left it, last chunk first (pass 1 left the last chunks in
        # cache); otherwise recomputed chunk by chunk
        for start in reversed(starts) if ws.keep else starts:
            stop = min(n, start + ws.chunk_rows)
            e = (
                ws.kernel_rows(start, stop)
                if ws.keep
                else _exp_rows(_fill_q(geometry, ws, start, stop, ws.kernel_rows(start, stop)))[0]
            )
            v_pos[start:stop], v_neg[start:stop] = _combine(
                problem,
                slice(start, stop),
                _skinny_matmul(e[:, :p], rhs_pos),
                _skinny_matmul(e[:, p:], rhs_neg),
                alpha[start:stop],
            )
        return v_pos, v_neg

    # explicit form A = exp(-q - lr/2 - lc/2) (with the floor), recomputing q per chunk
    row_lse = log_row - row_min
    rhs = torch.cat([problem.targets, torch.ones_like(problem.targets[:, :1])], 1).T * col_w  # [D+1, P+M]
    rhs_pos, rhs_neg = rhs[:, :p].contiguous(), rhs[:, p:].contiguous()
    buf = _SCRATCH.take("explicit", ws.chunk_rows, problem.n_targets, dtype, problem.x.device)
    for start in range(0, n, ws.chunk_rows):
        stop = min(n, start + ws.chunk_rows)
        q = _fill_q(geometry, ws, start, stop, buf[: stop - start])
        a = q.neg_().sub_(0.5 * row_lse[start:stop, None]).sub_(0.5 * col_lse[None, :])
        a = a.clamp_min_(_exp_floor_arg(dtype)).exp_()  # A >= e * tiny: avoids exp's slow underflow path
        if affinity_floor is not None:
            a.clamp_min_(math.sqrt(affinity_floor))
        v_pos[start:stop], v_neg[start:stop] = _combine(
            problem, slice(start, stop), _skinny_matmul(a[:, :p], rhs_pos), _skinny_matmul(a[:, p:], rhs_neg), None
        )
    return v_pos, v_neg


def field_terms(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor,
    neg_weight: Tensor | None,
    mask_diagonal: bool,
    *,
    taus: Sequence[float],
    normalize_distance: bool,
    mask_distance: float,
    affinity_floor: float | None,
    block_rows: int | None,
    kernel: str = "laplace",
) -> list[Pair]:
    """(V+, V-) per temperature by the eager (chunked, one-exp) path, for a prepared batch."""
    problem = _Problem(x, y_pos, y_neg, neg_weight, mask_diagonal, normalize_distance, mask_distance, kernel)
    return _eager_terms(problem, taus, affinity_floor, block_rows)


def _eager_terms(problem: _Problem, taus, affinity_floor, block_rows: int | None) -> list[Pair]:
    """The eager path for a prepared problem: workspace, distance scale, one pair per temperature."""
    rows = _chunk_rows(problem, block_rows)
    keep = _keep_kernel(problem, block_rows)
    ws = _Workspace(problem, rows, keep, cache_distance=keep and (len(taus) > 1 or problem.normalize_distance))
    problem.set_distance_scale(ws.raw_distance)
    return [_single_temperature(problem, t, affinity_floor, ws) for t in taus]


# ---- the torch.compile path ---------------------------------------------------------------------


def _dense_kernel(
    x: Tensor,
    targets: Tensor,
    n_pos: int,
    inv_tau: float,
    mask_q: float,
    mask_diagonal: bool,
    gaussian: bool = False,
):
    """Unblocked (V+, V-) of one temperature in plain tensor ops, for torch.compile to fuse:
    q = ||x - t|| / tau (self-pairs masked; squared and halved for the Gaussian kernel), row/column
    log-sum-exp, A = exp(-q - lr/2 - lc/2), cross-weighting."""
    if x.shape[1] <= 3:
        q = (x[:, None, :] - targets[None, :, :]).square().sum(-1).sqrt() * inv_tau
    else:
        q = torch.cdist(x, targets) * inv_tau
    if mask_diagonal:
        n = x.shape[0]
        eye = torch.eye(n, dtype=x.dtype, device=x.device) * mask_q
        q = torch.cat([q[:, :n_pos], q[:, n_pos : n_pos + n] + eye, q[:, n_pos + n :]], 1)
    if gaussian:
        q = 0.5 * q.square()
    logits = -q
    row_lse = torch.logsumexp(logits, 1, keepdim=True)
    col_lse = torch.logsumexp(logits, 0, keepdim=True)
    a = torch.exp(logits - 0.5 * row_lse - 0.5 * col_lse)
    a_pos, a_neg = a[:, :n_pos], a[:, n_pos:]
    s_pos = a_pos.sum(1, keepdim=True)
    s_neg = a_neg.sum(1, keepdim=True)
    v_pos = s_neg * (a_pos @ targets[:n_pos] - s_pos * x)
    v_neg = s_pos * (a_neg @ targets[n_pos:] - s_neg * x)
    return v_pos, v_neg


_COMPILED: dict[str, Callable] = {}


def compiled_field_terms(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor,
    neg_weight: Tensor | None,
    mask_diagonal: bool,
    *,
    taus: Sequence[float],
    normalize_distance: bool,
    mask_distance: float,
    affinity_floor: float | None,
    kernel: str = "laplace",
) -> list[Pair]:
    """:func:`field_terms` through ``torch.compile`` of :func:`_dense_kernel` (compiled on the first
    call per shape). Cases the dense kernel does not cover (affinity floor, extra negatives, more than
    ``KEEP_ELEMENTS`` kernel entries) run the eager path."""
    problem = _Problem(x, y_pos, y_neg, neg_weight, mask_diagonal, normalize_distance, mask_distance, kernel)
    if affinity_floor is not None or neg_weight is not None or problem.n * problem.n_targets > KEEP_ELEMENTS:
        return _eager_terms(problem, taus, affinity_floor, None)
    problem.set_distance_scale()
    if "dense" not in _COMPILED:
        _COMPILED["dense"] = torch.compile(_dense_kernel, dynamic=False)
    fn, scale = _COMPILED["dense"], problem.distance_scale
    xs, ts = problem.x / scale, problem.targets / scale
    # V computed on points divided by ``scale`` is V / scale: multiply back
    return [
        tuple(
            v * scale
            for v in fn(xs, ts, problem.n_pos, 1.0 / t, problem.mask_distance / t, mask_diagonal, problem.gaussian)
        )
        for t in taus
    ]


# ---- the graph-safe path (CUDA graph capture) ---------------------------------------------------

_GRAPH_SAFE = threading.local()


@contextmanager
def graph_safe() -> Iterator[None]:
    """Within (in this thread), :func:`drift_core.drift.drifting_field` runs
    :func:`graph_safe_field_terms`: used by the captured training step for its warm-up and capture."""
    before = getattr(_GRAPH_SAFE, "on", False)
    _GRAPH_SAFE.on = True
    try:
        yield
    finally:
        _GRAPH_SAFE.on = before


def graph_safe_wanted(x: Tensor) -> bool:
    """Inside :func:`graph_safe`, or while the current CUDA stream is being captured into a graph
    (the eager kernel's data-dependent choices read values back to the host, which capture forbids)."""
    return bool(getattr(_GRAPH_SAFE, "on", False)) or (x.is_cuda and torch.cuda.is_current_stream_capturing())


def graph_safe_field_terms(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor,
    neg_weight: Tensor | None,
    mask_diagonal: bool,
    *,
    taus: Sequence[float],
    normalize_distance: bool,
    mask_distance: float,
    affinity_floor: float | None,
    kernel: str = "laplace",
) -> list[Pair]:
    """(V+, V-) per temperature for a prepared batch by dense tensor ops with no host synchronisation:
    no value is read back, no branch or shape depends on the data, so the whole computation can be
    captured in a CUDA graph and replayed.

    With d [N, P+M] the distances (divided by their weighted batch mean when ``normalize_distance``,
    self-pairs masked), l = -d / tau (-d^2 / (2 tau^2) for the Gaussian kernel), lr = logsumexp over each row, lc = logsumexp over each column:
    A = max(exp(l - lr/2 - lc/2), sqrt(affinity_floor)) times the column weights, then the
    cross-weighting of Algorithm 2. This is the literal algorithm in the log domain (exact where
    the probabilities underflow), on the whole N x (P+M) matrix: memory O(N (P+M)), so it is meant
    for batches whose kernel fits the device, as in the toy training step."""
    n, p = x.shape[0], y_pos.shape[0]
    targets = torch.cat([y_pos, y_neg])
    col_weight = torch.ones(targets.shape[0], dtype=x.dtype, device=x.device)  # [P+M]
    if neg_weight is not None:
        col_weight[p:] = neg_weight
    if x.shape[1] <= 3:
        dist = _pairwise_distance(x, targets)
    else:  # the matmul form on centred points, clamped at 0 (not above), as the eager path
        centre = targets.mean(0, keepdim=True)
        xc, tc = x - centre, targets - centre
        dist = torch.addmm(tc.square().sum(1)[None, :], xc, tc.T, alpha=-2.0)
        dist = dist.add_(xc.square().sum(1, keepdim=True)).clamp_min_(0.0).sqrt_()
    if normalize_distance:
        scale = ((dist @ col_weight).sum() / (col_weight.sum() * n)).clamp_min(1e-3)  # a tensor, never read back
        dist = dist / scale
    if mask_diagonal:
        dist[:, p : p + n].diagonal().add_(mask_distance)
    terms = []
    for tau in taus:
        logits = dist.square().mul_(-0.5 / (tau * tau)) if kernel == "gaussian" else dist * (-1.0 / tau)
        half_row = logits.logsumexp(1, keepdim=True).mul_(0.5)
        half_col = logits.logsumexp(0, keepdim=True).mul_(0.5)
        a = logits.sub_(half_row).sub_(half_col).exp_()
        if affinity_floor is not None:
            a.clamp_min_(math.sqrt(affinity_floor))
        a.mul_(col_weight)
        a_pos, a_neg = a[:, :p], a[:, p:]
        s_pos, s_neg = a_pos.sum(1, keepdim=True), a_neg.sum(1, keepdim=True)
        terms.append((s_neg * (a_pos @ y_pos - s_pos * x), s_pos * (a_neg @ y_neg - s_neg * x)))
    return terms
