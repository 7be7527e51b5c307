"""Relabelling, cluster statistics and centroids, against hand computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.cluster import cluster_centroids, cluster_statistics, modality_centroids, relabel


def test_relabel_is_consecutive_and_order_preserving():
    labels = np.array([7, -1, 3, 7, 12, -5, 3])
    np.testing.assert_array_equal(relabel(labels), [1, -1, 0, 1, 2, -1, 0])
    np.testing.assert_array_equal(relabel(torch.tensor([-1, -1])), [-1, -1])
    with pytest.raises(ValueError):
        relabel(np.array([0.5, 1.0]))


def test_cluster_statistics_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2, -1, -1, 4])
    modalities = np.array([0, 1, 0, 1, 1, 0, 0, 1, 1])
    s = cluster_statistics(labels, modalities)
    assert (s.num_samples, s.num_clusters, s.num_outliers) == (9, 4, 2)  # label 3 is unused
    assert s.outlier_fraction == pytest.approx(2 / 9)
    assert (s.size_min, s.size_median, s.size_max, s.singletons) == (1, 1.5, 3, 2)
    assert s.mixed_clusters == 1  # only cluster 0 has both modalities
    assert s.mixed_sample_fraction == pytest.approx(3 / 7)
    assert s.clusters_per_modality == {0: 2, 1: 3}
    assert "4 clusters" in s.summary() and "1 mixed-modality" in s.summary()
    assert cluster_statistics(np.array([-1, -1])).num_clusters == 0


def test_cluster_centroids_by_hand():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0], [9.0, 9.0]])
    labels = torch.tensor([0, 0, 2, -1])
    c = cluster_centroids(f, labels, normalize=False)
    torch.testing.assert_close(c, torch.tensor([[0.5, 0.5], [0.0, 0.0], [3.0, 4.0]]))
    c = cluster_centroids(f.numpy(), labels.numpy(), num_clusters=4)
    assert c.shape == (4, 2)
    torch.testing.assert_close(c[2], torch.tensor([0.6, 0.8]))
    torch.testing.assert_close(c[3], torch.zeros(2))  # empty stays zero
    with pytest.raises(ValueError, match="num_clusters"):
        cluster_centroids(f, labels, num_clusters=2)


def test_modality_centroids_by_hand():
    f = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 4.0], [2.0, 2.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 0, 1, -1])
    mods = torch.tensor([0, 1, 1, 1, 0])
    c, present = modality_centroids(f, labels, mods, normalize=False)
    assert c.shape == (2, 2, 2)
    torch.testing.assert_close(c[0, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(c[0, 1], torch.tensor([0.0, 3.0]))
    torch.testing.assert_close(c[1, 1], torch.tensor([2.0, 2.0]))
    np.testing.assert_array_equal(present.numpy(), [[True, True], [False, True]])
    c, _ = modality_centroids(f, labels, mods, num_modalities=3)
    assert c.shape == (2, 3, 2)
    torch.testing.assert_close(c[0, 1].norm(), torch.tensor(1.0))
