"""DBSCAN on sparse Jaccard matrices gives the labels DBSCAN gives on the dense matrix."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from reidkit.cluster import dbscan
from reidkit.cluster.dbscan import neighbourhood_graph


def random_sparse_distances(n: int, density: float, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """A symmetric sparse matrix (absent = 1, like a Jaccard matrix) and its dense form."""
    rng = np.random.default_rng(seed)
    dense = np.ones((n, n), dtype=np.float32)
    mask = np.triu(rng.random((n, n)) < density, 1)
    values = rng.random((n, n)).astype(np.float32) * 0.9
    values[rng.random((n, n)) < 0.05] = 0.0  # explicit zeros between distinct points
    values[rng.random((n, n)) < 0.05] = np.float32(0.6)  # exactly at float32(eps)
    dense[mask] = values[mask]
    dense = np.minimum(dense, dense.T)
    np.fill_diagonal(dense, 0.0)
    rows, cols = np.nonzero(dense < 1)
    return sp.csr_matrix((dense[rows, cols], (rows, cols)), shape=(n, n)), dense


@pytest.mark.parametrize("seed", range(4))
def test_sparse_equals_dense(seed):
    sparse, dense = random_sparse_distances(150, 0.06, seed)
    for eps, min_samples in [(0.6, 4), (0.3, 2), (0.75, 6)]:
        expected = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dense)
        np.testing.assert_array_equal(dbscan(sparse, eps=eps, min_samples=min_samples), expected)
        np.testing.assert_array_equal(dbscan(dense, eps=eps, min_samples=min_samples), expected)


def test_hand_example_core_border_and_noise():
    # chain 0-1-2-3 within 0.5 of each other (0..2 core with min_samples=3), 4 is a border of 3? no:
    # distances: 0-1 .2, 1-2 .2, 0-2 .4, 2-3 .5, 3-4 .9 ; point 5 isolated.
    n = 6
    d = np.ones((n, n), dtype=np.float32)
    for (a, b), v in {(0, 1): .2, (1, 2): .2, (0, 2): .4, (2, 3): .5, (3, 4): .9}.items():
        d[a, b] = d[b, a] = v
    np.fill_diagonal(d, 0)
    sparse = sp.csr_matrix(np.where(d < 1, d, 0))  # drops the zero diagonal: the wrapper restores it
    labels = dbscan(sparse, eps=0.5, min_samples=3)
    # cores: 0 (0,1,2), 1 (0,1,2), 2 (0,1,2,3); 3 is a border of 2; 4 (d=.9) and 5 are noise
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, -1, -1])
    assert labels.dtype == np.int64


def test_border_point_joins_the_first_cluster_that_reaches_it():
    # two cores groups {0,1,2} and {4,5,6}; point 3 is within eps of 2 and of 4 but is no core
    n = 7
    d = np.ones((n, n), dtype=np.float32)
    for group in ((0, 1, 2), (4, 5, 6)):
        for a in group:
            for b in group:
                d[a, b] = 0.1
    d[2, 3] = d[3, 2] = d[3, 4] = d[4, 3] = 0.3
    np.fill_diagonal(d, 0)
    labels = dbscan(sp.csr_matrix(np.where(d < 1, d, 0)), eps=0.35, min_samples=4)
    expected = DBSCAN(eps=0.35, min_samples=4, metric="precomputed").fit_predict(d)
    np.testing.assert_array_equal(labels, expected)
    assert labels[3] == labels[2] == 0 and labels[4] == 1


def test_explicit_zero_counts_as_neighbour():
    d = sp.csr_matrix((np.zeros(2, dtype=np.float32), ([0, 1], [1, 0])), shape=(2, 2))
    assert d.nnz == 2  # stored zeros
    np.testing.assert_array_equal(dbscan(d, eps=0.1, min_samples=2), [0, 0])
    graph = neighbourhood_graph(d, 0.1)
    assert graph.nnz == 4  # both pairs and both diagonal zeros


def test_rejects_eps_at_or_beyond_the_absent_distance():
    sparse, _ = random_sparse_distances(20, 0.2, 0)
    with pytest.raises(ValueError, match="eps"):
        dbscan(sparse, eps=1.0)
    with pytest.raises(ValueError, match="min_samples"):
        dbscan(sparse, eps=0.5, min_samples=0)


@pytest.mark.parametrize("seed", range(6))
def test_graph_dbscan_matches_sklearn_on_dense_random_graphs(seed):
    # many borders shared by several clusters, many near-core points: the numbering and the border
    # rule (first cluster to reach a point) must match sklearn exactly
    sparse, dense = random_sparse_distances(300, 0.03, seed + 10)
    for min_samples in (2, 3, 5, 8):
        expected = DBSCAN(eps=0.5, min_samples=min_samples, metric="precomputed").fit_predict(dense)
        np.testing.assert_array_equal(dbscan(sparse, eps=0.5, min_samples=min_samples), expected)


def test_asymmetric_sparse_input_goes_through_sklearn():
    d = np.ones((5, 5), dtype=np.float32)
    np.fill_diagonal(d, 0)
    d[0, 1] = d[1, 2] = d[2, 0] = 0.1  # a directed cycle: not symmetric
    d[3, 4] = d[4, 3] = 0.1
    sparse = sp.csr_matrix(np.where(d < 1, d, 0))
    expected = DBSCAN(eps=0.2, min_samples=2, metric="precomputed").fit_predict(d)
    np.testing.assert_array_equal(dbscan(sparse, eps=0.2, min_samples=2), expected)
