"""The stop-gradient loss (drift_core.loss): its value, its gradient -2V/numel, no gradient through V."""

from __future__ import annotations

import torch

from drift_core.drift import drifting_field
from drift_core.loss import drifting_loss
from tests.drift_support import _data


def test_loss_value_and_gradient(gen):
    x, y = _data(gen)
    x = x.clone().requires_grad_(True)
    out = drifting_loss(x, y, lambda a, b: drifting_field(a, b, tau=0.2))
    v = out.field.v
    torch.testing.assert_close(out.loss, v.square().mean())
    out.loss.backward()
    torch.testing.assert_close(x.grad, -2 * v / v.numel())


def test_no_gradient_flows_through_v(gen):
    x, y = _data(gen)
    x = x.clone().requires_grad_(True)
    out = drifting_loss(x, y, lambda a, b: drifting_field(a, b, tau=0.2))
    assert not out.field.v.requires_grad
