"""drift_core.embedding: the 2D data rotated into D dimensions with noise in the extra coordinates."""

from __future__ import annotations

import pytest
import torch

from drift_core.config import DataConfig
from drift_core.embedding import Embedding
from drift_core.runtime import make_generator, stream


@pytest.mark.parametrize("dimension", [3, 8, 64])
def test_rotation_is_orthogonal_and_seeded_by_the_embedding_stream(dimension):
    emb = Embedding.for_config(DataConfig(dimension=dimension, embedding_noise=0.05), seed=3)
    r = emb.rotation.double()
    torch.testing.assert_close(r @ r.T, torch.eye(dimension, dtype=torch.float64), rtol=0, atol=1e-6)
    again = Embedding.random(dimension, 0.05, stream(3, "embedding"))
    assert torch.equal(emb.rotation, again.rotation) and emb.dimension == dimension
    other = Embedding.for_config(DataConfig(dimension=dimension), seed=4)
    assert not torch.allclose(emb.rotation, other.rotation)


def test_two_dimensions_means_no_embedding():
    assert Embedding.for_config(DataConfig(dimension=2), seed=0) is None


def test_projection_recovers_the_points_and_the_noise_sits_off_the_plane(gen):
    emb = Embedding.random(16, 0.05, make_generator(1))
    points = torch.rand(4000, 2, generator=gen) * 2 - 1
    embedded = emb.embed(points, make_generator(2))
    assert embedded.shape == (4000, 16)
    torch.testing.assert_close(emb.project(embedded), points, rtol=0, atol=1e-5)
    extra = emb.off_plane(embedded)
    assert extra.shape == (4000, 14)
    assert float(extra.std()) == pytest.approx(0.05, rel=0.05)
    # the rotation hides the plane: no single axis holds the data's coordinates
    assert float(embedded[:, 2:].std()) > 0.1
    torch.testing.assert_close(emb.project(emb.lift(points)), points, rtol=0, atol=1e-6)


def test_distances_are_those_of_the_padded_points(gen):
    """A rotation keeps distances: embedded distances equal the distances of [p, noise] (computed
    independently, without the rotation)."""
    emb = Embedding.random(8, 0.1, make_generator(5))
    points = torch.randn(50, 2, generator=gen)
    noise_stream = make_generator(9)
    embedded = emb.embed(points, noise_stream)
    padded = torch.cat([points, 0.1 * torch.randn(50, 6, generator=make_generator(9))], 1)
    exact = lambda a: torch.cdist(a.double(), a.double(), compute_mode="donot_use_mm_for_euclid_dist")  # noqa: E731
    torch.testing.assert_close(exact(embedded), exact(padded), rtol=1e-5, atol=1e-5)


def test_projection_is_linear_so_it_applies_to_field_vectors(gen):
    emb = Embedding.random(6, 0.05, make_generator(0))
    a, b = torch.randn(10, 6, generator=gen), torch.randn(10, 6, generator=gen)
    torch.testing.assert_close(emb.project(a - b), emb.project(a) - emb.project(b), rtol=1e-5, atol=1e-6)


def test_a_dimension_below_two_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        Embedding.random(1, 0.1, make_generator(0))
