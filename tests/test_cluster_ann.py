"""Approximate (faiss IVF / HNSW) neighbours: recall against the exact search, and labels."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from reidkit.cluster import faiss_knn, knn, knn_recall, pseudo_labels
from reidkit.cluster.synthetic import structured_features

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def feats() -> np.ndarray:
    return structured_features(2000, 64, identities=40, seed=4).features


def test_knn_recall_by_hand():
    truth = np.array([[0, 1, 2], [1, 0, 3]])
    found = np.array([[0, 2, 5], [1, 3, 0]])
    assert knn_recall(found, truth) == pytest.approx(5 / 6)
    assert knn_recall(truth, truth) == 1.0
    assert knn_recall(np.array([[0, -1, -1], [1, -1, -1]]), truth) == pytest.approx(2 / 6)


def test_flat_is_exact(feats):
    exact = knn(feats, 30, backend="torch")
    flat = faiss_knn(feats, 30, index="flat")
    assert knn_recall(flat.indices, exact.indices) > 0.999


@pytest.mark.parametrize("index,options,floor", [("ivf", {"nprobe": 16}, 0.97), ("hnsw", {}, 0.97)])
def test_approximate_indexes_have_high_recall_and_sorted_rows(feats, index, options, floor):
    exact = knn(feats, 30)
    found = faiss_knn(feats, 30, index=index, **options)
    assert knn_recall(found.indices, exact.indices) >= floor
    assert (np.diff(found.similarities, axis=1) <= 1e-6).all()
    assert (found.indices[:, 0] == np.arange(len(feats))).mean() > 0.99


def test_fewer_probes_lower_recall(feats):
    exact = knn(feats, 30)
    low = knn_recall(faiss_knn(feats, 30, index="ivf", nprobe=1).indices, exact.indices)
    high = knn_recall(faiss_knn(feats, 30, index="ivf", nprobe=32).indices, exact.indices)
    assert low < high


def test_labels_from_approximate_neighbours(feats):
    exact = pseudo_labels(feats)
    approx = pseudo_labels(feats, search="hnsw")
    assert adjusted_rand_score(exact, approx) > 0.98
