"""Probes: pure functions that compute what the app draws beyond a Snapshot.

* :func:`grid_points` / :func:`field_on_grid`: the base drifting field evaluated at arbitrary points
  (a grid), with the generated set as negatives.
* :func:`density_on_grid`: a Gaussian kernel density estimate of a 2D sample on a grid.
* :func:`inspect_step`: one training step taken in slow motion, with every intermediate quantity
  (kernel weights, V+, V-, V, the lookahead points z^0..z^K, drifted targets, loss, and where the outputs
  actually moved after the optimiser step).
* :func:`neighbours_by_dimension`: how the kernel weights flatten as the data is embedded in more
  dimensions (effective neighbours per particle against D), with and without distance normalisation
  and multiple temperatures.

Nothing here plots; everything returns tensors or numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from .config import DriftConfig
from .drift import drift_weights, drifting_field
from .embedding import Embedding
from .loss import drifting_loss
from .records import Batch, StepRecord
from .runtime import stream
from .train import Trainer, field_options, make_drift_fn

__all__ = [
    "grid_points",
    "field_on_grid",
    "density_on_grid",
    "StepInspection",
    "inspect_step",
    "effective_neighbours",
    "DataKernelShare",
    "data_kernel_share",
    "NeighboursByDimension",
    "neighbours_by_dimension",
    "KERNEL_VARIANTS",
    "DIMENSIONS",
]


def grid_points(bounds: tuple[float, float, float, float], resolution: int) -> Tensor:
    """Points of a resolution x resolution grid over bounds = (xmin, xmax, ymin, ymax), as [R*R, 2]
    (row-major: x varies fastest, so ``.reshape(R, R, 2)[j, i]`` is column i, row j)."""
    if resolution < 2:
        raise ValueError("resolution must be at least 2")
    x0, x1, y0, y1 = bounds
    xs = torch.linspace(x0, x1, resolution)
    ys = torch.linspace(y0, y1, resolution)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


@torch.no_grad()
def field_on_grid(query: Tensor, generated: Tensor, positives: Tensor, drift: DriftConfig) -> Tensor:
    """The base drifting field V_{p,q}(z) [G, 2] at query points z [G, 2]: positives ``positives`` [P, 2],
    negatives the generated set ``generated`` [N, 2] (no self-pairs to mask: the queries are not
    samples of q). Uses the config's temperature(s), distance normalisation, attraction-only switch,
    kernel and affinity floor; lookahead terms are not included (they are defined on the moved sample,
    not on a grid). With data embedded in D > 2 dimensions this is the field of the *projected* sets
    in the plane, a picture of the field rather than the one training uses."""
    field = drifting_field(
        query.float(), positives.float(), generated.float(), mask_diagonal=False, **field_options(drift)
    )
    return field.v


def density_on_grid(
    points: np.ndarray, bounds: tuple[float, float, float, float], resolution: int, bandwidth: float | None = None
) -> np.ndarray:
    """Gaussian kernel density estimate of ``points`` [n, 2] on a resolution x resolution grid over
    ``bounds``, as [R, R] (row j = y index, column i = x index), in units of 1/area.

    density(z) = 1/n sum_i N(z; points_i, h^2 I); h defaults to Scott's rule h = sigma n^(-1/6)
    (sigma = mean per-axis standard deviation), floored at 1% of the smaller box side."""
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(1)]
    x0, x1, y0, y1 = bounds
    if len(pts) == 0:
        return np.zeros((resolution, resolution))
    if bandwidth is None:
        sigma = float(pts.std(0).mean()) if len(pts) > 1 else 0.0
        bandwidth = sigma * len(pts) ** (-1 / 6)
    h = max(float(bandwidth), 0.01 * min(x1 - x0, y1 - y0), 1e-9)
    xs = np.linspace(x0, x1, resolution)
    ys = np.linspace(y0, y1, resolution)
    # separable Gaussian: K(z - p) = kx(x - px) ky(y - py)
    kx = np.exp(-0.5 * ((xs[None, :] - pts[:, :1]) / h) ** 2)  # [n, R]
    ky = np.exp(-0.5 * ((ys[None, :] - pts[:, 1:]) / h) ** 2)  # [n, R]
    return (ky.T @ kx) / (len(pts) * 2 * math.pi * h * h)


def effective_neighbours(weights: np.ndarray) -> float:
    """Effective number of neighbours of non-negative weights w: (sum w)^2 / sum w^2 (1 for one
    neighbour, n for n equal weights; 0 when all weights are 0)."""
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    squares = float((w * w).sum())
    return total * total / squares if squares > 0 else 0.0


@dataclass(frozen=True)
class StepInspection:
    """Everything one training step computes, as numpy arrays (N generated, P positives).

    step: the step number this inspection took (the trainer's count after it).
    noise [N, noise_dim]; outputs x [N, 2] before the step; positives [P, 2];
    w_pos [N, P], w_neg [N, N]: cross-weighted kernel weights of the base term at the first
    temperature (negatives = x itself, self-pairs masked, weight 0); distance [N, P+N];
    v_pos, v_neg [N, 2]: attraction and repulsion of the base term (v_pos - v_neg = base term);
    terms: V_0..V_K; points: z^0..z^K; weights: w_0..w_K; v [N, 2]: the combined field;
    targets = x + v; loss = mean(v^2) (the drifting loss); outputs_after [N, 2]: f(noise) after the
    optimiser step; achieved = outputs_after - x; record: the trainer's StepRecord.
    """

    step: int
    tau: float
    noise: np.ndarray
    outputs: np.ndarray
    positives: np.ndarray
    w_pos: np.ndarray
    w_neg: np.ndarray
    distance: np.ndarray
    v_pos: np.ndarray
    v_neg: np.ndarray
    terms: list[np.ndarray]
    points: list[np.ndarray]
    weights: tuple[float, ...]
    v: np.ndarray
    targets: np.ndarray
    loss: float
    outputs_after: np.ndarray
    achieved: np.ndarray
    record: StepRecord

    @property
    def tracking_error(self) -> float:
        """RMS of (achieved - v): how far the network's actual move is from the drift's target move."""
        return float(np.sqrt(((self.achieved - self.v) ** 2).sum(1).mean()))

    @property
    def achieved_fraction(self) -> float:
        """Mean projection of the achieved move on the target move, relative to |v|^2:
        sum <achieved_i, v_i> / sum |v_i|^2 (1 = the outputs moved exactly the intended amount on average)."""
        denom = float((self.v * self.v).sum())
        return float((self.achieved * self.v).sum()) / denom if denom > 0 else 0.0


def inspect_step(trainer: Trainer, batch: Batch | None = None) -> StepInspection:
    """Take one real training step of ``trainer`` on ``batch`` (default: its next batch) and return
    every intermediate quantity. The step is the same as ``trainer.step(batch)`` (it is that call);
    the extra quantities are recomputed from the same outputs with the same drift function. With data
    embedded in D > 2 dimensions the points and vectors are projected onto the data's plane (the
    weights and distances are those of D dimensions, the loss that of the full field).

    Raises :class:`~drift_core.train.DivergedError` if the trainer has diverged, TypeError for an arm
    without a network (particle mode).
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(f"inspect_step inspects a network's training step, not a {type(trainer).__name__}")
    batch = batch or trainer.draw_batch()
    drift = trainer.config.drift
    device = trainer.device
    noise = batch.noise.to(device)
    positives = batch.positives.to(device)
    with torch.no_grad():
        trainer.model.eval()
        x = trainer.model(noise).float()
        drift_fn = make_drift_fn(drift)
        field = drifting_loss(x, positives, drift_fn).field
        kernel = drift_weights(x, positives, None, **_weights_options(drift, drift.temperatures[0]))
    record = trainer.step(batch)
    with torch.no_grad():
        trainer.model.eval()
        after = trainer.model(noise).float()
    to_np = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
    flat = lambda t: to_np(trainer.project(t))  # noqa: E731
    v = flat(field.v)
    x_np = flat(x)
    after_np = flat(after)
    w_neg = to_np(kernel.w_neg)
    np.fill_diagonal(w_neg, 0.0)  # masked self-pairs carry exp(-1e6/tau) = 0 anyway
    return StepInspection(
        step=record.step,
        tau=float(drift.temperatures[0]),
        noise=to_np(batch.noise),
        outputs=x_np,
        positives=flat(positives),
        w_pos=to_np(kernel.w_pos),
        w_neg=w_neg,
        distance=to_np(kernel.distance),
        v_pos=flat(field.base.v_pos),
        v_neg=flat(field.base.v_neg),
        terms=[flat(t) for t in field.terms],
        points=[flat(p) for p in field.points],
        weights=tuple(field.weights),
        v=v,
        targets=x_np + v,
        loss=float(field.v.double().square().mean()),
        outputs_after=after_np,
        achieved=after_np - x_np,
        record=record,
    )


@dataclass(frozen=True)
class DataKernelShare:
    """How much of each particle's kernel weight falls on the data (see :func:`data_kernel_share`).

    Attributes:
        share: median over particles of s+_i / (s+_i + s-_i), in [0, 1]; s± are the row sums of the
            normalised affinity A over positives / negatives (Algorithm 2 before cross-weighting).
        nearest_data: median over particles of the distance to the nearest data point (data units).
        tau: the temperature used (the largest of the config's).
    """

    share: float
    nearest_data: float
    tau: float

    VANISHED = 1e-6
    """Below this share V+ and V are numerically ~0: the particles cannot see the data."""

    @property
    def vanished(self) -> bool:
        return not self.share >= self.VANISHED


def data_kernel_share(x: Tensor, y_pos: Tensor, drift: DriftConfig, *, max_points: int = 256) -> DataKernelShare:
    """The data's share of the kernel weight of generated points x [N, D] against data y_pos [P, D],
    with the generated set as negatives (self-pairs masked), as the training field sees them.

    share_i = s+_i / (s+_i + s-_i),  s+_i = sum_{j in pos} A_ij,  s-_i = sum_{k in neg} A_ik,
    A the doubly-softmaxed affinity of :func:`drift_weights` at the largest temperature. When it is
    ~0 the attraction V+ (and so V) vanishes: raw distances many temperatures away (the paper's far
    start at tau = 0.1) or collapsed outputs repel each other's weight away from the data. At most
    ``max_points`` of each set are used (evenly spaced), so the cost stays small."""
    x = x[:: max(1, math.ceil(len(x) / max_points))].float()
    y = y_pos[:: max(1, math.ceil(len(y_pos) / max_points))].float()
    tau = max(drift.temperatures)
    weights = drift_weights(x, y, **_weights_options(drift, tau))
    s_pos = weights.affinity[:, : len(y)].sum(1)
    s_neg = weights.affinity[:, len(y) :].sum(1)
    total = s_pos + s_neg
    share = torch.where(total > 0, s_pos / total.clamp_min(torch.finfo(total.dtype).tiny), torch.zeros_like(total))
    nearest = torch.cdist(x, y).min(1).values
    return DataKernelShare(float(share.median()), float(nearest.median()), float(tau))


def _weights_options(drift: DriftConfig, tau: float) -> dict:
    """:func:`~drift_core.drift.drift_weights` keyword arguments of a drift config at one temperature."""
    options = field_options(drift)
    del options["attraction_only"]
    return {**options, "tau": tau}


# ---- the kernel in D dimensions -------------------------------------------------------------------

DIMENSIONS: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
"""The embedding dimensions :func:`neighbours_by_dimension` measures by default (2 up to the config's 64)."""

KERNEL_VARIANTS: dict[str, tuple[bool, bool]] = {
    "raw distances": (False, False),
    "normalised distances": (True, False),
    "multi-temperature": (False, True),
    "normalised, multi-temperature": (True, True),
}
"""The four fields :func:`neighbours_by_dimension` compares: {label: (normalize_distance, multi_temperature)}."""


@dataclass(frozen=True)
class NeighboursByDimension:
    """Effective neighbours per particle against the embedding dimension D (see
    :func:`neighbours_by_dimension`).

    Attributes:
        dimensions: the D values, ascending.
        neighbours: {variant label (:data:`KERNEL_VARIANTS`): median over particles of the effective
            number of data points its attraction averages, one value per D}.
        overlap: {variant label: median over particles of the overlap of its weights in D with its
            weights in 2D (1: the kernel still sees the 2D neighbourhood; towards 0: other points), one
            value per D}. Few neighbours alone do not mean a sharp picture: when the noise's
            fluctuations exceed tau the weights are peaked on *random* data points.
        positives: P, the number of data points: the value when the weights are completely flat.
    """

    dimensions: tuple[int, ...]
    neighbours: dict[str, tuple[float, ...]]
    overlap: dict[str, tuple[float, ...]]
    positives: int

    def flatness(self, variant: str) -> tuple[float, ...]:
        """The variant's neighbours as a fraction of P (1: every data point weighs the same)."""
        return tuple(n / self.positives for n in self.neighbours[variant])


@torch.no_grad()
def neighbours_by_dimension(
    generated: Tensor,
    positives: Tensor,
    drift: DriftConfig,
    *,
    dimensions: Sequence[int] = DIMENSIONS,
    embedding_noise: float = 0.05,
    seed: int = 0,
    max_points: int = 256,
) -> NeighboursByDimension:
    """How the kernel weights flatten as 2D data is embedded in D dimensions: for each D, the particles
    ``generated`` [N, 2] and the data ``positives`` [P, 2] are embedded as a run of that D embeds its
    data (:class:`~drift_core.embedding.Embedding`: the rotation of ``stream(seed, "embedding")``, then
    ``embedding_noise`` * N(0, 1) in the D - 2 extra coordinates, particles and data alike, drawn from the
    same stream), and each particle's weights on the data are measured for each of
    :data:`KERNEL_VARIANTS` (the config's tau, kernel and affinity floor; distance normalisation and
    multiple temperatures on or off).

    Per particle i, with W+_tau [N, P] the cross-weighted positive weights of Algorithm 2 (the
    generated set as negatives, self-pairs masked) and c_tau = 1 / RMS(V_tau) when several temperatures
    are summed (per-temperature drift normalisation, paper eqs. 23-26), else 1:

        w_i = sum_tau c_tau W+_tau[i, :]          (V+_i = w_i y - (sum w_i) x_i: what particle i averages)
        n_i = (sum_j w_ij)^2 / sum_j w_ij^2       (:func:`effective_neighbours`: 1 .. P)
        o_i = sum_j min(w_ij / sum w_i, w2_ij / sum w2_i)   (overlap with the same variant's 2D weights w2)

    and the result is the median of n_i and of o_i over particles, per variant and D. As D grows the
    noise adds about ``embedding_noise`` * sqrt(2 (D - 2)) to every distance in quadrature: near and far
    pairs look alike and n_i climbs towards P, or, where the noise's fluctuations exceed tau, the
    weights settle on random data points and o_i falls. At most ``max_points`` of each set are used
    (evenly spaced)."""
    x2 = generated[:: max(1, math.ceil(len(generated) / max_points))].float().cpu()
    y2 = positives[:: max(1, math.ceil(len(positives) / max_points))].float().cpu()
    dims = tuple(sorted({int(d) for d in dimensions}))
    if not dims or dims[0] < 2:
        raise ValueError(f"dimensions must be at least 2, got {tuple(dimensions)}")
    planar: dict[str, Tensor] = {}
    neighbours: dict[str, list[float]] = {label: [] for label in KERNEL_VARIANTS}
    overlap: dict[str, list[float]] = {label: [] for label in KERNEL_VARIANTS}
    for d in (2,) + dims:  # 2 first: the planar weights each D is compared with
        if d == 2:
            x, y = x2, y2
        else:
            generator = stream(seed, "embedding")
            embedding = Embedding.random(d, embedding_noise, generator)
            x, y = embedding.embed(x2, generator), embedding.embed(y2, generator)
        for label, (normalize, multi) in KERNEL_VARIANTS.items():
            weights = _attraction_weights(x, y, replace(drift, normalize_distance=normalize, multi_temperature=multi))
            if d == 2 and label not in planar:
                planar[label] = weights
                continue
            counts = [effective_neighbours(row) for row in weights.numpy()]
            neighbours[label].append(float(np.median(counts)))
            overlap[label].append(float(_overlap(weights, planar[label]).median()))
    return NeighboursByDimension(
        dims,
        {k: tuple(v) for k, v in neighbours.items()},
        {k: tuple(v) for k, v in overlap.items()},
        int(y2.shape[0]),
    )


def _attraction_weights(x: Tensor, y: Tensor, drift: DriftConfig) -> Tensor:
    """sum_tau c_tau W+_tau [N, P] in float64 (c_tau = 1 / RMS(V_tau) when several temperatures are
    summed, else 1): the weights V+ averages the data with (see :func:`neighbours_by_dimension`)."""
    combined = torch.zeros(x.shape[0], y.shape[0], dtype=torch.float64)
    for tau in drift.temperatures:
        w = drift_weights(x, y, **_weights_options(drift, tau))
        scale = 1.0
        if drift.multi_temperature:
            scale = 1.0 / float((w.w_pos @ y - w.w_neg @ x).square().mean().sqrt().clamp_min(1e-30))
        combined += w.w_pos.double() * scale
    return combined


def _overlap(a: Tensor, b: Tensor) -> Tensor:
    """Per row, sum_j min(a_ij / sum_j a_ij, b_ij / sum_j b_ij) in [0, 1] (0 for an all-zero row)."""
    pa = a / a.sum(1, keepdim=True).clamp_min(1e-300)
    pb = b / b.sum(1, keepdim=True).clamp_min(1e-300)
    return torch.minimum(pa, pb).sum(1)
