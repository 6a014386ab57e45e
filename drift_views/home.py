"""The Home page's picture: one drifting field on a small example, computed by drift_core."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from drift_core import palette
from drift_core.data.toy2d import bimodal
from drift_core.drift import drifting_field
from drift_core.palette import Stroke
from drift_core.runtime import make_generator

from . import figures


@lru_cache(maxsize=1)
def _example() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = bimodal(300, generator=make_generator(0))
    generated = 0.15 * torch.randn(80, 2, generator=make_generator(1)) + torch.tensor([0.0, 0.25])
    field = drifting_field(generated, data, tau=0.1)
    return data.numpy(), generated.numpy(), field.v_pos.numpy(), field.v_neg.numpy()


def drift_picture() -> dict:
    """Data (grey), generated points (blue) and their attraction (green), repulsion (red) and drift V (black)."""
    data, gen, v_pos, v_neg = _example()
    scale = 0.25 / max(float(np.sqrt(((v_pos - v_neg) ** 2).sum(1)).mean()), 1e-9)
    traces = [
        figures.scatter_trace(data, "data", "rgba(120,130,145,0.45)", 5),
        figures.arrow_trace(gen, v_pos, scale, "V⁺ attraction to data", palette.V_POS),
        figures.arrow_trace(gen, -v_neg, scale, "−V⁻ repulsion from generated", palette.V_NEG),
        figures.arrow_trace(gen, v_pos - v_neg, scale, "V = V⁺ − V⁻", Stroke(figures.TEXT, width=2.0)),
        figures.scatter_trace(gen, "generated x = f(ε)", palette.GENERATED.colour, 7),
    ]
    layout = figures.base_layout(
        (-1.3, 1.3, -0.9, 0.9), title="The drifting field on generated points (τ = 0.1)", height=420, uirevision="home"
    )
    layout["yaxis"]["range"] = [-0.75, 0.75]
    return {"data": traces, "layout": layout}
