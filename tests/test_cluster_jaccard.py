"""The sparse Jaccard distance and pseudo-labels against the dense lineage reference."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score
from test_cluster_lineage import lineage_jaccard, lineage_ranks

from reidkit.cluster import dbscan, jaccard_distance, pseudo_labels
from reidkit.cluster.jaccard import expanded_sets, reciprocal_mask
from reidkit.cluster.knn import Neighbors
from reidkit.cluster.synthetic import structured_features


@pytest.fixture(scope="module")
def data():
    # identity clusters, a visible/infrared offset and outliers, shaped like SYSU-MM01 at 1/80 scale
    return structured_features(420, 256, identities=8, seed=5)


@pytest.fixture(scope="module")
def reference(data):
    """The dense lineage's distances and labels (computed once: the Python loops are slow)."""
    dist = lineage_jaccard(data.features, 30, 6)
    labels = DBSCAN(eps=0.6, min_samples=4, metric="precomputed").fit_predict(dist)  # = lineage_labels
    return dist, labels


def dense(matrix: sp.spmatrix) -> np.ndarray:
    out = np.ones(matrix.shape, dtype=np.float32)
    coo = matrix.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


def given_ranks(x: np.ndarray, k: int) -> Neighbors:
    ranks = lineage_ranks(x, k)
    sims = np.take_along_axis(x @ x.T, ranks, 1)
    return Neighbors(ranks, sims)


def test_same_distances_as_the_lineage_given_the_same_lists(data, reference):
    x = data.features
    ours = jaccard_distance(x, neighbors=given_ranks(x, 30))
    assert ours.dtype == np.float32 and ours.has_sorted_indices
    np.testing.assert_array_equal(dense(ours) < 1, reference[0] < 1)  # stored where encodings overlap
    np.testing.assert_allclose(dense(ours), reference[0], atol=2e-6)


@pytest.mark.parametrize("k1,k2", [(15, 1), (13, 4)])  # 13: np.around(6.5) = 6 (half to even)
def test_other_neighbourhood_sizes(k1, k2):
    x = structured_features(200, 64, identities=6, seed=2).features
    ref = lineage_jaccard(x, k1, k2)
    ours = jaccard_distance(x, k1=k1, k2=k2, neighbors=given_ranks(x, k1))
    assert ours.dtype == np.float32 and ours.has_sorted_indices
    np.testing.assert_array_equal(dense(ours) < 1, ref < 1)  # stored exactly where encodings overlap
    np.testing.assert_allclose(dense(ours), ref, atol=2e-6)


def test_matrix_structure(data):
    dist = jaccard_distance(data.features)
    n = len(data.features)
    assert dist.shape == (n, n)
    np.testing.assert_array_equal(dist.diagonal(), 0.0)
    diag_stored = np.array([i in dist.indices[dist.indptr[i]:dist.indptr[i + 1]] for i in range(n)])
    assert diag_stored.all()  # explicit zeros
    assert abs(dist - dist.T).max() < 1e-6
    assert dist.data.min() >= 0 and dist.data.max() < 1


def test_max_distance_keeps_exactly_the_close_pairs(data):
    full = jaccard_distance(data.features)
    cut = jaccard_distance(data.features, max_distance=0.6)
    np.testing.assert_array_equal(dense(cut) < 1, dense(full) <= np.float32(0.6))
    np.testing.assert_array_equal(dbscan(full, eps=0.6), dbscan(cut, eps=0.6))


def test_pseudo_labels_equal_the_dense_lineage(data, reference):
    x = data.features
    ref = reference[1]
    ours = pseudo_labels(x)
    assert ours.dtype == np.int64
    assert adjusted_rand_score(ref, ours) >= 0.999
    np.testing.assert_array_equal(ours, ref)  # and here, with no float32 near-ties, identical
    # a meaningful task: several clusters, some outliers, not the trivial answer
    assert 5 <= ours.max() + 1 <= 40 and 0 < (ours < 0).mean() < 0.5


def test_pseudo_labels_other_radius_and_torch_input(data, reference):
    x = torch.from_numpy(data.features)
    ref = DBSCAN(eps=0.5, min_samples=3, metric="precomputed").fit_predict(reference[0])
    ours = pseudo_labels(x, eps=0.5, min_samples=3)
    np.testing.assert_array_equal(ours, ref)


def test_reciprocal_mask_by_hand():
    # lists include the row itself first; 0<->1 reciprocal, 2 lists 0 but 0 does not list 2
    ranks = np.array([[0, 1], [1, 0], [2, 0]])
    np.testing.assert_array_equal(reciprocal_mask(ranks, 2), [[True, True], [True, True], [True, False]])


def test_expansion_adds_half_sets_with_large_overlap():
    # rows 0..3 form a clique; row 4 is attached to 3 only. With k1 = 4 (half = 2 -> 3 columns),
    # R(0) = {0,1,2,3}; H(3) = {3, 2, ...} overlaps R(0) fully -> nothing new; row 4 stays out.
    ranks = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 1, 0, 3], [3, 2, 1, 0], [4, 3, 2, 1]])
    e = expanded_sets(ranks, 4).toarray()
    np.testing.assert_array_equal(e[0], [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(e[4], [0, 0, 0, 0, 1])


def test_rejects_broken_neighbour_lists(data):
    x = data.features
    nb = given_ranks(x, 30)
    bad = Neighbors(nb.indices.copy(), nb.similarities)
    bad.indices[3, 5] = -1
    with pytest.raises(ValueError, match="outside"):
        jaccard_distance(x, neighbors=bad)
    with pytest.raises(ValueError, match="shape"):
        jaccard_distance(x, k1=30, neighbors=Neighbors(nb.indices[:, :10], nb.similarities[:, :10]))


def test_backends_and_precisions_give_the_same_labels(data, reference):
    pytest.importorskip("faiss")
    x = data.features
    for kwargs in ({"backend": "faiss"}, {"backend": "torch"}):
        np.testing.assert_array_equal(pseudo_labels(x, **kwargs), reference[1])
    from reidkit.cluster import knn

    fp32 = knn(x, 30, precision="fp32")
    np.testing.assert_array_equal(pseudo_labels(x, neighbors=fp32), reference[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_features_give_the_same_labels(data, reference):  # pragma: no cover - no GPU in CI
    np.testing.assert_array_equal(pseudo_labels(torch.from_numpy(data.features).cuda()), reference[1])
