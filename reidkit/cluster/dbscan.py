"""DBSCAN on a precomputed (sparse or dense) distance matrix, with the lineage's exact labels.

The lineage runs ``sklearn.cluster.DBSCAN(metric="precomputed")``. Its labels are fully determined by
the neighbourhood graph (pairs with distance <= eps, each point its own neighbour):

* core points have at least ``min_samples`` neighbours;
* clusters are the connected components of the core-core graph, numbered in the order of their lowest
  core index (sklearn grows a cluster from each still unlabelled core point, in index order);
* a non-core point reached by some core point takes the smallest label among them (the first cluster
  whose expansion reaches it); the rest are noise (-1).

For a symmetric sparse matrix (what :func:`reidkit.cluster.jaccard_distance` returns) this module
computes exactly that with ``scipy.sparse.csgraph.connected_components``, in O(nnz) time and memory,
without sklearn's per-point neighbour arrays. Dense or asymmetric input goes to sklearn itself.

The sparse contract:

* an absent entry means "not a neighbour" (the Jaccard distance of a non-overlapping pair is 1, beyond
  any useful eps); therefore ``eps`` must be below 1 for sparse input;
* a stored zero is a neighbour; the diagonal is always a neighbour, stored or not;
* distances are compared with eps in float32, as sklearn compares the lineage's dense float32 matrix
  (``d <= float32(eps)``: a distance equal to float32(0.6) is a neighbour).
"""
from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from reidkit.distributed import on_rank0

log = logging.getLogger(__name__)


@on_rank0  # distributed runs: computed once on rank 0, the result sent to every rank
def dbscan(dist, *, eps: float, min_samples: int = 4) -> np.ndarray:
    """[N] int64 DBSCAN labels (-1 = outlier) of a precomputed distance matrix [N, N].

    Args:
        dist: ``scipy.sparse`` matrix (absent = not a neighbour, stored zeros count) or dense array.
        eps: neighbourhood radius (a pair is linked when its distance <= eps); < 1 for sparse input.
        min_samples: neighbours, the point itself included, that make a core point.
    """
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    start = time.perf_counter()
    if sp.issparse(dist):
        if eps >= 1.0:
            raise ValueError(f"eps={eps} >= 1 on a sparse Jaccard matrix: pairs that share no neighbour "
                             "(distance 1, not stored) would be neighbours; use eps < 1")
        graph = neighbourhood_graph(dist, eps)
        if _is_symmetric(graph):
            labels = graph_dbscan(graph, min_samples)
        else:
            labels = _sklearn_dbscan(graph, float(np.float32(eps)), min_samples)
    else:
        dense = np.asarray(dist)
        if dense.ndim != 2 or dense.shape[0] != dense.shape[1]:
            raise ValueError(f"dist must be a square matrix, got shape {dense.shape}")
        labels = _sklearn_dbscan(dense, eps, min_samples)
    log.debug("DBSCAN eps=%g min_samples=%d: %d clusters, %d outliers of %d (%.2f s)", eps, min_samples,
              int(labels.max(initial=-1)) + 1, int((labels < 0).sum()), labels.size, time.perf_counter() - start)
    return labels


def neighbourhood_graph(dist: sp.spmatrix, eps: float) -> sp.csr_matrix:
    """float32 CSR of the stored entries <= float32(eps), plus an explicit zero diagonal, sorted indices."""
    csr = sp.csr_matrix(dist)
    if csr.shape[0] != csr.shape[1]:
        raise ValueError(f"dist must be square, got shape {csr.shape}")
    n = csr.shape[0]
    values = csr.data.astype(np.float32, copy=False)
    keep = values <= np.float32(eps)
    rows = np.repeat(np.arange(n), np.diff(csr.indptr))[keep]
    cols = csr.indices[keep]
    off_diagonal = rows != cols
    rows = np.concatenate([rows[off_diagonal], np.arange(n)])
    cols = np.concatenate([cols[off_diagonal], np.arange(n)])
    data = np.concatenate([values[keep][off_diagonal], np.zeros(n, dtype=np.float32)])
    graph = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    graph.sum_duplicates()
    return graph


def graph_dbscan(graph: sp.csr_matrix, min_samples: int) -> np.ndarray:
    """DBSCAN labels from a symmetric neighbourhood graph (every stored entry is a link, diagonal
    included), numbered exactly as sklearn numbers them (module docstring)."""
    n = graph.shape[0]
    counts = np.diff(graph.indptr)
    core = counts >= min_samples
    rows = np.repeat(np.arange(n), counts)
    cols = graph.indices
    links = core[rows] & core[cols]
    core_graph = sp.csr_matrix((np.ones(int(links.sum()), dtype=np.int8), (rows[links], cols[links])), shape=(n, n))
    _, component = connected_components(core_graph, directed=False)
    labels = np.full(n, -1, dtype=np.int64)
    core_index = np.flatnonzero(core)  # ascending: the first core of each component is its seed
    seeds_of, first = np.unique(component[core_index], return_index=True)
    cluster_of_component = np.full(component.max() + 1 if n else 0, -1, dtype=np.int64)
    cluster_of_component[seeds_of[np.argsort(core_index[first])]] = np.arange(seeds_of.size)
    labels[core_index] = cluster_of_component[component[core_index]]
    reach = core[rows] & ~core[cols]  # a core point reaching a non-core point
    border = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(border, cols[reach], labels[rows[reach]])
    reached = border != np.iinfo(np.int64).max
    labels[reached] = border[reached]
    return labels


def _is_symmetric(graph: sp.csr_matrix) -> bool:
    pattern = graph.copy()
    pattern.data = np.ones_like(pattern.data, dtype=np.int8)
    return (pattern != pattern.T).nnz == 0


def _sklearn_dbscan(dist, eps: float, min_samples: int) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    if sp.issparse(dist):
        from sklearn.neighbors import sort_graph_by_row_values

        dist = sort_graph_by_row_values(dist, copy=False, warn_when_not_sorted=False)
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dist).astype(np.int64)
