"""DBSCAN on a precomputed (sparse or dense) distance matrix, as the lineage runs it.

``sklearn.cluster.DBSCAN(metric="precomputed")`` is the lineage's clusterer, so it is the one used here;
what this wrapper adds is the sparse contract of :func:`reidkit.cluster.jaccard_distance`:

* an absent entry means "not a neighbour" (the Jaccard distance of a non-overlapping pair is 1, beyond
  any useful eps); therefore ``eps`` must be below 1 for sparse input, or the dense lineage would link
  pairs the sparse matrix cannot show;
* a stored zero is a neighbour (sklearn counts explicit zeros; self-distances must be stored);
* entries above ``eps`` are dropped before sklearn sees them, and the graph is handed over sorted by
  row values, so sklearn neither copies nor warns;
* distances stay float32 and are compared with ``eps`` in float32, as sklearn compares the lineage's
  dense float32 matrix (``d <= float32(eps)``: a distance equal to float32(0.6) is a neighbour).

DBSCAN's labels do not depend on the order of neighbours within a row: clusters are grown from the
lowest-index unlabelled core point, and a border point joins the first cluster that reaches it.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN
from sklearn.neighbors import sort_graph_by_row_values

log = logging.getLogger(__name__)


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
        eps = float(np.float32(eps))  # sklearn compares float32 distances with it in float32
    else:
        graph = np.asarray(dist)
        if graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
            raise ValueError(f"dist must be a square matrix, got shape {graph.shape}")
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(graph)
    log.debug("DBSCAN eps=%g min_samples=%d: %d clusters, %d outliers of %d (%.2f s)", eps, min_samples,
              int(labels.max()) + 1, int((labels < 0).sum()), labels.size, time.perf_counter() - start)
    return labels.astype(np.int64)


def neighbourhood_graph(dist: sp.spmatrix, eps: float) -> sp.csr_matrix:
    """CSR of the stored entries <= eps plus an explicit zero diagonal, sorted by row values."""
    csr = sp.csr_matrix(dist)
    if csr.shape[0] != csr.shape[1]:
        raise ValueError(f"dist must be square, got shape {csr.shape}")
    n = csr.shape[0]
    values = csr.data.astype(np.float32, copy=False)
    keep = values <= np.float32(eps)
    rows = np.repeat(np.arange(n), np.diff(csr.indptr))[keep]
    cols = csr.indices[keep]
    data = values[keep]
    off_diagonal = rows != cols
    rows = np.concatenate([rows[off_diagonal], np.arange(n)])
    cols = np.concatenate([cols[off_diagonal], np.arange(n)])
    data = np.concatenate([data[off_diagonal], np.zeros(n, dtype=np.float32)])
    graph = sp.csr_matrix((data, (rows, cols)), shape=csr.shape)
    return sort_graph_by_row_values(graph, copy=False, warn_when_not_sorted=False)
