"""The feature space in 2D (drift_core/images/projection.py and ImageTrainer.feature_view): the PCA
plane against scikit-learn's PCA, vectors projected by the linear part alone, a deterministic sign;
the trainer's view is the grid's images, a fixed real sample (the same for every seed, so both arms of a
pair share one plane) and the V the training step uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.data import to_model_space
from drift_core.images.drift_loss import feature_drift
from drift_core.images.features import drift_groups
from drift_core.images.projection import FeatureProjection, FeatureView
from drift_core.images.train import FEATURE_VIEW_REALS, ImageTrainer

TINY = dict(batch_size=8, positives=8, steps=4)


@pytest.fixture
def cloud():
    g = torch.Generator().manual_seed(4)
    return torch.randn(80, 12, generator=g) * torch.linspace(3.0, 0.2, 12) + torch.randn(12, generator=g)


def test_projection_is_scikit_learns_pca_up_to_sign(cloud):
    projection = FeatureProjection.fit(cloud)
    reference = PCA(n_components=2, svd_solver="full").fit(cloud.double().numpy())
    ours = projection.project(cloud).double().numpy()
    theirs = reference.transform(cloud.double().numpy())
    signs = np.sign((ours * theirs).sum(0))
    np.testing.assert_allclose(ours, theirs * signs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(projection.explained, reference.explained_variance_ratio_, rtol=1e-6)
    # the projected real features are centred and uncorrelated, the first axis the wider one
    assert np.abs(ours.mean(0)).max() < 1e-4 and abs(np.corrcoef(ours.T)[0, 1]) < 1e-4
    assert ours[:, 0].var() > ours[:, 1].var()
    # sign: each axis's largest loading is positive, so a refit (or a sign-flipped copy of the data's
    # spread) gives the same plane
    loadings = projection.components
    assert (loadings.gather(1, loadings.abs().argmax(1, keepdim=True)) > 0).all()
    assert torch.equal(FeatureProjection.fit(cloud).components, loadings)


def test_vectors_are_projected_by_the_linear_part(cloud):
    projection = FeatureProjection.fit(cloud)
    v = torch.randn(5, 12, generator=torch.Generator().manual_seed(1))
    points = cloud[:5]
    torch.testing.assert_close(
        projection.project(points + v) - projection.project(points), projection.project_vectors(v), atol=1e-5, rtol=0
    )
    view = FeatureView("g", 3, generated=points, real=cloud, drift=v).planar(projection)
    assert view.generated.shape == (5, 2) and view.real.shape == (80, 2) and view.drift.shape == (5, 2)
    assert view.explained == projection.explained and view.step == 3
    with pytest.raises(ValueError, match=r"\[m, D\]"):
        FeatureProjection.fit(torch.zeros(0, 3))


def test_trainer_view_is_the_grid_images_a_fixed_real_sample_and_the_training_v():
    """In the official-style layout (a map drifted per location is flattened per image for the view);
    the default layout's view is drawn by the images page's AppTest."""
    config = ImageExperimentConfig().with_values({**TINY, "per_location": True, "separate_mean_std": True, "K": 1})
    trainer = ImageTrainer(config, device="cpu")
    trainer.run(2)
    group = "stage4.map"
    view = trainer.feature_view(group, n=16)
    # generated: the group's features of the first 16 display images (EMA weights), per image
    images = trainer.generate(trainer.display_noise[:16])
    gen = drift_groups(trainer.encoder(images), trainer.layout)[group]
    torch.testing.assert_close(view.generated, gen.flatten(1))
    assert view.generated.shape == (16, 256 * 16) and view.step == 2
    # real: a fixed sample whose features do not depend on the run's seed
    other = ImageTrainer(config.with_values({"seed": 5}), device="cpu")
    assert view.real.shape[0] == min(FEATURE_VIEW_REALS, len(trainer.images))
    assert torch.equal(other.feature_view(group).real, view.real)
    assert torch.equal(other.feature_projection(group).components, trainer.feature_projection(group).components)
    # drift: the V of the training step (this arm's K and layout) for these images, in feature units
    expected = feature_drift(
        gen, trainer.reference_features()[group], trainer.drift_fn, batched_drift_fn=trainer.batched_drift_fn
    )
    torch.testing.assert_close(view.drift, expected.v.flatten(1))
    assert len(expected.field.terms) == 2
    # the grid's own (uint8) images give the view of those images
    snap = trainer.snapshot(16)
    from_snapshot = trainer.feature_view(group, images=snap.images)
    torch.testing.assert_close(
        from_snapshot.generated,
        drift_groups(trainer.encoder(to_model_space(snap.images)), trainer.layout)[group].flatten(1),
    )
    assert trainer.feature_groups == tuple(drift_groups(trainer.encoder(images[:1]), trainer.layout))
    with pytest.raises(KeyError, match="no feature group"):
        trainer.feature_view("stage9.map")
