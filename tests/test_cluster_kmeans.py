"""k-means with pluggable centroid updates (the primitive IMSL's modality mean clustering builds on)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score

from reidkit.cluster import assign, kmeans, mean_update, modality_centroids


def blobs(k: int = 5, per: int = 40, dim: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g) * 4
    x = torch.cat([c + torch.randn(per, dim, generator=g) for c in centres])
    return x, torch.arange(k).repeat_interleave(per)


def test_recovers_separated_blobs():
    x, truth = blobs()
    result = kmeans(x, 5, seed=0)
    assert result.converged
    assert adjusted_rand_score(truth.numpy(), result.labels.numpy()) == 1.0
    # the returned centroids are the means of the returned clusters
    torch.testing.assert_close(result.centroids, mean_update(x, result.labels, 5)[0])


def test_assign_by_hand_with_ties_to_the_lowest_index():
    c = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    x = torch.tensor([[0.1, 0.0], [1.9, 0.0], [0.5, 0.0], [1.2, 0.0]])
    np.testing.assert_array_equal(assign(x, c).numpy(), [0, 1, 0, 2])  # 0.5 is equidistant from 0 and 2


def test_mean_update_by_hand():
    x = torch.tensor([[0.0, 0.0], [2.0, 2.0], [5.0, 1.0]])
    centroids, present = mean_update(x, torch.tensor([0, 0, 2]), 3)
    torch.testing.assert_close(centroids, torch.tensor([[1.0, 1.0], [0.0, 0.0], [5.0, 1.0]]))
    np.testing.assert_array_equal(present.numpy(), [True, False, True])


def test_custom_update_modality_mean_one_step_by_hand():
    # cluster 0 has 3 visible rows near (1, 0) and one infrared row at (0, 1): the plain mean is pulled
    # to the visible side, the modality-mean centroid sits halfway
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-5.0, -5.0]])
    mods = torch.tensor([0, 0, 0, 1, 0])

    def modality_mean(features, labels, k):
        means, has = modality_centroids(features, labels, mods, k, num_modalities=2, normalize=False)
        centroids = (means * has.unsqueeze(-1)).sum(1) / has.sum(1, keepdim=True).clamp(min=1)
        return centroids, has.any(1)

    init = torch.tensor([[0.5, 0.5], [-5.0, -5.0]])
    result = kmeans(x, 2, iterations=1, init=init, update=modality_mean)
    torch.testing.assert_close(result.centroids[0], torch.tensor([0.5, 0.5]))
    plain = kmeans(x, 2, iterations=1, init=init)
    torch.testing.assert_close(plain.centroids[0], torch.tensor([0.75, 0.25]))


def test_empty_clusters_are_dropped_or_kept():
    x = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
    init = torch.tensor([[0.0], [10.0], [100.0]])  # the third centroid never gets a member
    dropped = kmeans(x, 3, init=init)
    assert dropped.centroids.shape == (2, 1) and int(dropped.labels.max()) == 1
    kept = kmeans(x, 3, init=init, drop_empty=False)
    assert kept.centroids.shape == (3, 1)
    torch.testing.assert_close(kept.centroids[2], torch.tensor([100.0]))


def test_seeded_inits_are_deterministic_and_k_is_capped():
    x, _ = blobs(3, 10)
    a, b = kmeans(x, 3, init="random", seed=3), kmeans(x, 3, init="random", seed=3)
    torch.testing.assert_close(a.centroids, b.centroids)
    assert kmeans(x[:2], 5).centroids.shape[0] <= 2


def test_bad_update_and_arguments_raise():
    x, _ = blobs(2, 5)
    with pytest.raises(ValueError, match="update returned"):
        kmeans(x, 2, update=lambda f, l, k: (torch.zeros(k + 1, f.shape[1]), torch.ones(k, dtype=torch.bool)))
    with pytest.raises(ValueError, match="init"):
        kmeans(x, 2, init="furthest")
    with pytest.raises(ValueError, match="mean update"):
        kmeans(x, 2, backend="faiss", update=lambda f, l, k: mean_update(f, l, k))


def test_faiss_backend_runs():
    pytest.importorskip("faiss")
    x, truth = blobs(4, 100)
    result = kmeans(F.normalize(x, dim=1), 4, backend="faiss", iterations=10)
    assert result.centroids.shape == (4, 16) and result.labels.shape == (400,)
    assert adjusted_rand_score(truth.numpy(), result.labels.numpy()) > 0.9
