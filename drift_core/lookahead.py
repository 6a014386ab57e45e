"""Lookahead drifting (Zhang, Niwa, Kleijn 2026): K lookahead terms after the base drifting term.

**This is a reconstruction, not the paper's published algorithm.** The paper's full text was not
available to us (see ``shared/reference/lookahead.md``). What is known: the drifting terms are computed
in sequence within one training step; each uses the previous terms, the positive samples and the
model's output; later terms "capture higher order gradient information"; the terms are scaled to
comparable magnitudes; the output is pushed along their (weighted) sum; inference stays one step.
Reconstruction A, which satisfies all of these, is the default here:

    z^0     = sg(x)                                        [N, D]
    U_k     = drifting_field(z^k, y_pos, negatives_k)      negatives_k = z^k (A, self-masked) or sg(x) (B)
    V_k     = c_k U_k                                      c_k: none (1) | unit_rms (1/RMS U_k) | relative (RMS U_0 / RMS U_k)
    z^{k+1} = z^k + alpha V_k                              the moved set: the next term sees the moved distribution
    V       = sum_{k=0..K} w_k V_k                         the training target displacement: loss = ||x - sg(x + V)||^2

With K = 0 (any weights, scaling none or relative) this is exactly :func:`drifting_field`. With
alpha = 1, uniform weights and no scaling, x + V = z^{K+1}: the target is the end point of K+1 explicit
Euler steps of the particle flow dz/dt = V_{p,q_t}(z). If p = q then E[U_0] = 0, so every later term
vanishes too and the equilibrium is kept.

Weights w (K+1 of them): uniform (1, ..., 1); heun (1/(K+1) each, i.e. (1/2, 1/2) at K = 1);
geometric (gamma^k); extrapolation (LA-DPM style: V_K + lam (V_K - V_{K-1}), i.e. (..., 0, -lam, 1+lam)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from .drift import DriftField, drifting_field

if TYPE_CHECKING:  # only read, never built here: the engine's math does not import the config layer
    from .config import DriftConfig

__all__ = [
    "LookaheadField",
    "lookahead_field",
    "lookahead_options",
    "lookahead_terms",
    "lookahead_weights",
    "SCALINGS",
    "WEIGHTINGS",
    "NEGATIVES",
]

Scaling = Literal["none", "unit_rms", "relative"]
Weighting = Literal["uniform", "heun", "geometric", "extrapolation"]
Negatives = Literal["moved", "fixed"]
SCALINGS: tuple[str, ...] = ("none", "unit_rms", "relative")
WEIGHTINGS: tuple[str, ...] = ("uniform", "heun", "geometric", "extrapolation")
NEGATIVES: tuple[str, ...] = ("moved", "fixed")


@dataclass(frozen=True)
class LookaheadField:
    """Result of :func:`lookahead_field`.

    Attributes:
        v: combined field sum_k w_k V_k, the training target displacement, shape [N, D].
        terms: the scaled terms V_0 .. V_K, each [N, D].
        points: the query sets z^0 .. z^K, each [N, D] (z^0 = x).
        weights: w_0 .. w_K.
        fields: the full :class:`DriftField` of each term before scaling (V+, V-, raw RMS).
        raw_rms: RMS of each un-scaled term U_k, shape [K+1]: the per-term convergence signal.
    """

    v: Tensor
    terms: list[Tensor]
    points: list[Tensor]
    weights: tuple[float, ...]
    fields: list[DriftField]
    raw_rms: Tensor

    @property
    def base(self) -> DriftField:
        """The base term's field (V_0 and its attraction and repulsion parts)."""
        return self.fields[0]


def lookahead_weights(K: int, weighting: str = "uniform", *, gamma: float = 0.5, lam: float = 0.5) -> tuple[float, ...]:
    """The K+1 weights w_0..w_K of a weighting scheme (see module docstring)."""
    if K < 0:
        raise ValueError(f"K must be >= 0, got {K}")
    if weighting == "uniform":
        return (1.0,) * (K + 1)
    if weighting == "heun":
        return (1.0 / (K + 1),) * (K + 1)
    if weighting == "geometric":
        return tuple(float(gamma) ** k for k in range(K + 1))
    if weighting == "extrapolation":
        if K == 0:
            return (1.0,)
        return (0.0,) * (K - 1) + (-float(lam), 1.0 + float(lam))
    raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")


def lookahead_options(drift: DriftConfig) -> dict:
    """The lookahead keyword arguments a drift config sets (K, α, the scaling and weighting of the terms
    with their γ and λ, the negatives), shared by :func:`lookahead_field` and its per-location batched
    form; the drift options proper (temperatures, distances, kernel) are the caller's."""
    return dict(
        K=drift.K,
        alpha=drift.alpha,
        scaling=drift.scaling,
        weighting=drift.weighting,
        gamma=drift.gamma,
        lam=drift.lam,
        negatives=drift.negatives,
    )


def lookahead_field(
    x: Tensor,
    y_pos: Tensor,
    *,
    K: int,
    tau: float | Sequence[float],
    alpha: float = 1.0,
    scaling: Scaling = "none",
    weighting: Weighting = "uniform",
    gamma: float = 0.5,
    lam: float = 0.5,
    negatives: Negatives = "moved",
    **drift_options,
) -> LookaheadField:
    """Lookahead drifting field with K lookahead terms after the base term (reconstruction A by default).

    Args:
        x: generated samples, shape [N, D] (call under no_grad; treated as sg(x)).
        y_pos: positives, shape [P, D].
        K: number of lookahead terms after the base term; K = 0 is the baseline drifting model.
        tau: temperature(s), passed to :func:`drifting_field`.
        alpha: step between terms, z^{k+1} = z^k + alpha V_k.
        scaling: per-term scaling c_k: "none", "unit_rms" (1/RMS U_k) or "relative" (RMS U_0 / RMS U_k).
        weighting: "uniform", "heun", "geometric" (gamma^k) or "extrapolation" (lam).
        negatives: "moved" (negatives are z^k, self-masked: reconstruction A) or "fixed" (negatives
            stay sg(x), pair i masked: reconstruction B).
        **drift_options: forwarded to :func:`drifting_field` (normalize_drift, normalize_distance, ...).

    Returns:
        :class:`LookaheadField`; ``v`` has shape [N, D].
    """
    return lookahead_terms(
        lambda z, fixed_negatives: drifting_field(
            z, y_pos, fixed_negatives, tau=tau, mask_diagonal=True, **drift_options
        ),
        x,
        K=K,
        alpha=alpha,
        scaling=scaling,
        weighting=weighting,
        gamma=gamma,
        lam=lam,
        negatives=negatives,
    )


def lookahead_terms(
    field_of: Callable[[Tensor, Tensor | None], DriftField],
    x: Tensor,
    *,
    K: int,
    alpha: float = 1.0,
    scaling: Scaling = "none",
    weighting: Weighting = "uniform",
    gamma: float = 0.5,
    lam: float = 0.5,
    negatives: Negatives = "moved",
) -> LookaheadField:
    """The lookahead loop of the module docstring for any drifting field: ``field_of(z, fixed)`` is
    U = drifting_field(z, y_pos, negatives) with the positives bound, where ``fixed`` is None for the
    moved set z itself (self-masked; reconstruction A) or sg(x) (reconstruction B). Every RMS is over
    all of the term's entries, so a batched field [B, N, D] (the image drift per location) gets the
    same steps, scalings and weights as [N, D]. Arguments as :func:`lookahead_field`."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; choose one of {SCALINGS}")
    if negatives not in NEGATIVES:
        raise ValueError(f"unknown negatives {negatives!r}; choose one of {NEGATIVES}")
    weights = lookahead_weights(K, weighting, gamma=gamma, lam=lam)
    z = x
    points, terms, fields, raw = [], [], [], []
    base_rms = None
    for k in range(K + 1):
        field = field_of(z, None if negatives == "moved" else x)
        u = field.v
        rms = u.square().mean().sqrt()
        base_rms = rms if base_rms is None else base_rms
        if scaling == "unit_rms":
            v_k = u * (1.0 / rms.clamp_min(1e-12))
        elif scaling == "relative" and k > 0:
            v_k = u * (base_rms / rms.clamp_min(1e-12))
        else:
            v_k = u
        points.append(z)
        terms.append(v_k)
        fields.append(field)
        raw.append(rms)
        if k < K:
            z = z + alpha * v_k
    if K == 0 and weights[0] == 1.0:
        v = terms[0]
    else:
        v = torch.zeros_like(terms[0])
        for w, t in zip(weights, terms):
            if w != 0.0:
                v = v + w * t
    return LookaheadField(v=v, terms=terms, points=points, weights=weights, fields=fields, raw_rms=torch.stack(raw))
