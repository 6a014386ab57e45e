"""The feature-space drifting loss (drift_core/images/drift_loss.py) in both layouts against an
independent implementation of the official ``drift_loss`` usage, written plainly below (float64, loops
over feature groups, locations and temperatures): one scale per feature map, one RMS per temperature
over all of a map's locations, the loss the mean over its problems, one loss per group, summed. Also:
the feature groups of the default layout are today's (one vector per map, mean and std joined), and
:func:`feature_drift` gives the V the loss trains with."""

from __future__ import annotations

import math

import pytest
import torch

from drift_core.images.batched_drift import make_batched_drift_fn
from drift_core.images.config import ImageExperimentConfig
from drift_core.images.drift_loss import feature_drift, feature_drift_loss
from drift_core.images.features import GroupLayout, RandomConvEncoder, drift_groups
from drift_core.train import make_drift_fn

R_LIST = (0.02, 0.05, 0.2)  # the images' temperatures: tau = 0.05 x {0.4, 1, 4}


def official_problem_set_loss(gen: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The official drift_loss (drifting.md 2.4) for the problems ``gen`` [N, L, C] (with gradient) and
    ``pos`` [P, L, C], one problem per location l, returning the mean of the per-problem losses.
    (The official affinity floor, sqrt(max(row * col, 1e-6)), is not part of the images' drift.)"""
    n, locations, c = gen.shape
    old = gen.detach()
    distances = []
    for loc in range(locations):
        targets = torch.cat([old[:, loc], pos[:, loc]])  # generated first, then positives
        distances.append(((old[:, loc, None, :] - targets[None, :, :]) ** 2).sum(-1).sqrt())
    scale = torch.stack(distances).mean()  # one scale for all locations, self-pairs included
    scale_inputs = max(float(scale) / math.sqrt(c), 1e-3)
    forces = {r: [] for r in R_LIST}
    for loc in range(locations):
        d = distances[loc] / max(float(scale), 1e-3)
        d = d + 100.0 * torch.eye(n, d.shape[1], dtype=d.dtype)  # mask the self-pairs
        targets = torch.cat([old[:, loc], pos[:, loc]]) / scale_inputs
        x = old[:, loc] / scale_inputs
        for r in R_LIST:
            logits = -d / r
            affinity = (logits.softmax(1) * logits.softmax(0)).sqrt()
            a_neg, a_pos = affinity[:, :n], affinity[:, n:]
            coeff = torch.cat([-a_neg * a_pos.sum(1, keepdim=True), a_pos * a_neg.sum(1, keepdim=True)], 1)
            forces[r].append(coeff @ targets - coeff.sum(1, keepdim=True) * x)
    mean_square = {r: torch.stack(forces[r]).square().mean() for r in R_LIST}  # over all locations
    # The official code divides by sqrt(max(mean_square, 1e-8)), as the engine does
    # (drift_core.drift.MEAN_SQUARE_FLOOR); this reference divides without the floor, so the examples
    # stay above it.
    assert min(mean_square.values()) > 1e-8, "an example where the official floor acts"
    rms = {r: mean_square[r].sqrt() for r in R_LIST}
    losses = []
    for loc in range(locations):
        goal = old[:, loc] / scale_inputs + sum(forces[r][loc] / rms[r] for r in R_LIST)
        losses.append(((gen[:, loc] / scale_inputs - goal) ** 2).mean())
    return torch.stack(losses).mean()


def official_groups(features: dict[str, torch.Tensor], per_location: bool, separate: bool) -> dict[str, torch.Tensor]:
    """The encoder's features as official problem sets [N, L, C], written out: a map per location (a loop
    over its rows and columns) or as one vector; a stage's mean and std apart or joined."""
    groups = {}
    for name, t in features.items():
        if name.endswith(".std") and not separate:
            continue
        if name.endswith(".mean") and not separate:
            groups[name[:-5] + ".mean_std"] = torch.cat([t, features[name[:-5] + ".std"]], 1)[:, None, :]
        elif t.ndim == 4 and per_location:
            cells = [t[:, :, h, w] for h in range(t.shape[2]) for w in range(t.shape[3])]
            groups[name] = torch.stack(cells, 1)
        elif t.ndim == 4:
            groups[name] = t.reshape(t.shape[0], 1, -1)
        else:
            groups[name] = t[:, None, :]
    return groups


@pytest.mark.parametrize("per_location,separate", [(True, True), (True, False), (False, True), (False, False)])
def test_loss_and_gradient_equal_the_official_drift_loss(per_location, separate):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 3, 32, 32, generator=g, dtype=torch.float64).tanh().requires_grad_(True)
    y = torch.randn(5, 3, 32, 32, generator=g, dtype=torch.float64).tanh()
    encoder = RandomConvEncoder().double()
    config = ImageExperimentConfig().with_values({"per_location": per_location, "separate_mean_std": separate})
    layout = GroupLayout(per_location, separate)
    batched = make_batched_drift_fn(config.drift) if per_location else None
    with torch.no_grad():
        real = encoder(y)
    ours = feature_drift_loss(
        drift_groups(encoder(x), layout),
        drift_groups(real, layout),
        make_drift_fn(config.drift),
        batched_drift_fn=batched,
    )
    (grad,) = torch.autograd.grad(ours.loss, x)

    gen_groups, pos_groups = (
        official_groups(encoder(x), per_location, separate),
        official_groups(real, per_location, separate),
    )
    assert list(gen_groups) == list(ours.group_loss)
    official = {name: official_problem_set_loss(gen_groups[name], pos_groups[name]) for name in gen_groups}
    total = sum(official.values())
    (expected_grad,) = torch.autograd.grad(total, x)

    assert ours.loss.dtype == torch.float64
    assert ours.loss.item() == pytest.approx(total.item(), rel=1e-9)
    for name, value in official.items():
        assert ours.group_loss[name] == pytest.approx(value.item(), rel=1e-9), name
    torch.testing.assert_close(grad, expected_grad, rtol=1e-7, atol=1e-8 * float(expected_grad.abs().max()))
    assert len(ours.group_loss) == 7 + 4 * separate


def test_default_groups_are_one_vector_per_map_and_one_mean_std_group():
    """The default layout is the groups drifted before the options existed: a map flattened channel-major,
    a stage's [mean, std] over locations in one group."""
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    features = RandomConvEncoder()(x)
    groups = drift_groups(features)
    assert list(groups) == [
        "pixels",
        "stage1.mean_std",
        "stage2.mean_std",
        "stage3.mean_std",
        "stage3.patch2",
        "stage4.mean_std",
        "stage4.map",
    ]
    h = features["stage4.map"]
    assert torch.equal(groups["stage4.map"], h.flatten(1))
    flat = h.flatten(2)
    assert torch.equal(
        groups["stage4.mean_std"], torch.cat([flat.mean(2), (flat.var(2, unbiased=False) + 1e-6).sqrt()], 1)
    )
    per_location = drift_groups(features, GroupLayout(per_location=True))
    assert per_location["stage4.map"].shape == (3, 16, 256)
    assert torch.equal(per_location["stage4.map"][:, 5], h[:, :, 1, 1])  # location 5 = row 1, column 1
    assert per_location["pixels"].shape == (3, 3072)  # vectors stay one problem


def test_feature_drift_is_the_v_the_loss_trains_with():
    """dL/dx = -2 V~ / (S numel) for one group, with V~ the normalised field; feature_drift returns
    V = S V~ in feature units, so the gradient is -2 V / (S^2 numel)."""
    g = torch.Generator().manual_seed(2)
    config = ImageExperimentConfig().with_values({"per_location": True, "K": 1})
    for shape in ((10, 12), (10, 4, 6)):
        x = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
        y = torch.randn(8, *shape[1:], generator=g, dtype=torch.float64) + 0.3
        fns = dict(drift_fn=make_drift_fn(config.drift), batched_drift_fn=make_batched_drift_fn(config.drift))
        result = feature_drift_loss({"g": x}, {"g": y}, **fns)
        (grad,) = torch.autograd.grad(result.loss, x)
        drift = feature_drift(x.detach(), y, fns["drift_fn"], batched_drift_fn=fns["batched_drift_fn"])
        assert drift.v.shape == x.shape and drift.scale == pytest.approx(result.scales["g"])
        torch.testing.assert_close(grad, -2 * drift.v / (drift.scale**2 * x.numel()), rtol=1e-9, atol=1e-15)
