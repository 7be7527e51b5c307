"""Sparse k-reciprocal Jaccard distance: the SpCL / OpenUnReID / ClusterContrast lineage without N x N.

The lineage (Zhong et al.'s k-reciprocal encoding, CVPR 2017, as ClusterContrast codes it in
``clustercontrast/utils/faiss_rerank.py``, github.com/alibaba/cluster-contrast-reid), step by step, and what is
stored here instead of a dense matrix:

1. kNN lists ``I`` [N, k1] (the row itself included, normally first): :func:`reidkit.cluster.knn`.
2. k-reciprocal sets: ``R(i) = {I[i, r] : i in I[I[i, r], :k1 + 1]}`` and the same with ``k1 / 2``
   (``int(np.around(k1 / 2))``). As in the lineage, the list has k1 columns, so ``:k1 + 1`` reads k1
   of them and the half lists read ``k1 / 2 + 1``.
3. expansion ``E(i) = R(i) u {H(c) : c in R(i), |H(c) n R(i)| > 2/3 |H(c)|}`` with ``H`` the half sets.
4. encoding: ``V[i, E(i)] = softmax(-(2 - 2 x_i . x_E(i)))`` in float32 (CSR, ~|E| per row).
5. query expansion: ``V'[i] = mean(V[I[i, :k2]])`` (CSR sparse product).
6. Jaccard: ``m_ij = sum_c min(V'[i, c], V'[j, c])`` over the pairs that share a column,
   ``d_ij = 1 - m_ij / (2 - m_ij)``, clamped at 0. Pairs sharing no column are at distance 1 and are not
   stored; the diagonal is stored as explicit zeros (DBSCAN counts a point as its own neighbour).

Peak memory is O(N (k1 + pairs per row)), never O(N^2): step 6 runs in blocks of rows bounded by their
number of (row, column, partner) expansions, in a locality order that keeps each block's partners few.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from reidkit.distributed import on_rank0

from ._progress import StepLog
from .dots import pair_dots
from .knn import Neighbors, as_features, knn

log = logging.getLogger(__name__)


@on_rank0  # distributed runs: computed once on rank 0, the result sent to every rank
def jaccard_distance(features, *, k1: int = 30, k2: int = 6, backend: str = "auto", search: str = "exact",
                     neighbors: Neighbors | None = None, max_distance: float | None = None,
                     progress: bool = False) -> sp.csr_matrix:
    """k-reciprocal Jaccard distances of the rows of ``features`` [N, D] (L2-normalised float32).

    Args:
        k1, k2: the lineage's neighbourhood sizes (k1 >= 1, 1 <= k2; k2 is capped at k1).
        backend, search: kNN backend and exact / approximate search (:func:`reidkit.cluster.knn`),
            unless ``neighbors`` is given.
        neighbors: precomputed ``knn(features, k1)`` lists (e.g. approximate ones, see
            :mod:`reidkit.cluster.ann`); at least k1 columns.
        max_distance: store only pairs with distance <= this (DBSCAN with eps <= max_distance gives the
            same labels); default: every pair whose encodings overlap.
        progress: log progress at INFO.
    Returns:
        [N, N] symmetric ``scipy.sparse.csr_matrix`` (float32, sorted indices) holding the distances of
        the pairs whose encodings overlap, explicit zeros on the diagonal. Absent pairs are at distance 1.
    """
    x = as_features(features)
    n = x.shape[0]
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    k1 = min(k1, n)
    if neighbors is None:
        neighbors = knn(x, k1, backend=backend, search=search, progress=progress)
    ranks = np.ascontiguousarray(neighbors.indices[:, :k1], dtype=np.int64)
    if ranks.shape != (n, k1):
        raise ValueError(f"neighbors must have shape [N, >= k1] = [{n}, {k1}], got {neighbors.indices.shape}")
    if ranks.min() < 0 or ranks.max() >= n:
        raise ValueError("neighbors contain indices outside [0, N) (an approximate search left empty slots)")
    steps = StepLog(log, f"Jaccard (N={n})", 4, progress)
    expansion = expanded_sets(ranks, k1)
    steps.update(1)
    encoding = encode(x, expansion, neighbors)
    steps.update(2)
    if min(k2, k1) > 1:
        encoding = query_expansion(encoding, ranks[:, :min(k2, k1)])
    steps.update(3)
    dist = min_overlap_distance(encoding, max_distance=max_distance, order=locality_order(expansion))
    steps.finish(f"{dist.nnz / n:.1f} stored pairs per row")
    return dist


def reciprocal_mask(ranks: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """[N, k] bool: row i appears in the first ``k`` entries of the list of its r-th neighbour."""
    n = ranks.shape[0]
    fwd = ranks[:, :k]
    out = np.empty(fwd.shape, dtype=bool)
    for s in range(0, n, chunk):
        back = fwd[fwd[s:s + chunk]]  # [c, k, k]
        out[s:s + chunk] = (back == np.arange(s, min(s + chunk, n))[:, None, None]).any(axis=2)
    return out


def expanded_sets(ranks: np.ndarray, k1: int, chunk: int = 512) -> sp.csr_matrix:
    """Steps 2-3: [N, N] boolean CSR whose row i holds E(i), sorted."""
    n, cols = ranks.shape
    k_full = min(k1 + 1, cols)
    k_half = min(int(np.around(k1 / 2)) + 1, cols)
    in_r = reciprocal_mask(ranks, k_full)
    in_h = reciprocal_mask(ranks, k_half)
    half = ranks[:, :k_half]
    half_size = in_h.sum(axis=1)
    member = np.zeros((min(chunk, n), n), dtype=bool)  # R(i) of the chunk's rows, as a bitmap
    indptr, indices = [np.zeros(1, dtype=np.int64)], []
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        rr, pos = np.nonzero(in_r[s:e])
        cand = ranks[s + rr, pos]  # c in R(i), one entry per (i, c)
        member[rr, cand] = True
        hits = (member[rr[:, None], half[cand]] & in_h[cand]).sum(axis=1)
        grow = hits > 2 / 3 * half_size[cand]  # the lineage's test, in the same float arithmetic
        member[rr, cand] = False
        g_rows = np.repeat(rr[grow], k_half)
        g_cols = half[cand[grow]].reshape(-1)
        g_keep = in_h[cand[grow]].reshape(-1)
        keys = np.concatenate([rr * n + cand, g_rows[g_keep] * n + g_cols[g_keep]])
        keys.sort()
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
        row, col = np.divmod(keys, n)
        indices.append(col)
        indptr.append(indptr[-1][-1] + np.cumsum(np.bincount(row, minlength=e - s)))
    indptr = np.concatenate(indptr)
    indices = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(indices.size, dtype=bool), indices, indptr), shape=(n, n))


def encode(x, expansion: sp.csr_matrix, neighbors: Neighbors | None = None) -> sp.csr_matrix:
    """Step 4: float32 CSR ``V`` with ``V[i, E(i)] = softmax(-(2 - 2 x_i . x_j))`` over j in E(i).

    ``x``: [N, D] features (numpy, or a torch tensor on any device). Similarities found in
    ``neighbors`` are reused; the others are computed in float32.
    """
    n = expansion.shape[0]
    indptr, indices = expansion.indptr, expansion.indices.astype(np.int64)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    sims = np.full(indices.size, np.nan, dtype=np.float32)
    if neighbors is not None:
        k = neighbors.indices.shape[1]
        known = np.arange(n).repeat(k) * n + neighbors.indices.reshape(-1)
        order = np.argsort(known)
        known = known[order]
        keys = rows * n + indices
        at = np.minimum(np.searchsorted(known, keys), known.size - 1)
        found = known[at] == keys
        sims[found] = neighbors.similarities.reshape(-1)[order[at[found]]]
    todo = np.flatnonzero(np.isnan(sims))
    sims[todo] = pair_dots(x, rows[todo], indices[todo])
    logits = -(np.float32(2) - np.float32(2) * sims)
    starts = indptr[:-1]
    row_max = np.maximum.reduceat(logits, starts)
    weights = np.exp(logits - row_max[rows])
    weights /= np.add.reduceat(weights, starts)[rows]
    return sp.csr_matrix((weights.astype(np.float32), indices, indptr), shape=(n, n))


def query_expansion(encoding: sp.csr_matrix, ranks: np.ndarray) -> sp.csr_matrix:
    """Step 5: ``V'[i] = mean(V[ranks[i]])`` ([N, k2] ranks), summed in rank order as the lineage does."""
    n, k2 = ranks.shape
    average = sp.csr_matrix((np.ones(ranks.size, dtype=np.float32), ranks.reshape(-1),
                             np.arange(0, ranks.size + 1, k2)), shape=(n, n))
    out = (average @ encoding).tocsr()
    out.data /= np.float32(k2)
    out.sort_indices()
    return out


def min_overlap_distance(encoding: sp.csr_matrix, *, max_distance: float | None = None,
                         order: np.ndarray | None = None, budget: int = 1 << 19,
                         max_cells: int = 1 << 22) -> sp.csr_matrix:
    """Step 6: ``1 - m / (2 - m)`` with ``m_ij = sum_c min(V'[i, c], V'[j, c])`` for overlapping pairs.

    Rows are taken in ``order`` (a locality order, see :func:`locality_order`), in blocks of at most
    ``budget`` (row, column, partner) expansions; each block's minima are summed with ``np.bincount``
    over the block's rows x the partners it actually reaches (at most ``max_cells`` accumulators, else
    the block is split). Work is O(expansions); memory O(budget + max_cells) besides the output.
    """
    n = encoding.shape[0]
    ctx = _MinimaContext(encoding)
    order = np.arange(n) if order is None else order
    per_row = np.bincount(np.repeat(np.arange(n), np.diff(ctx.csr.indptr)),  # expansions of each row
                          weights=ctx.col_len[ctx.csr.indices], minlength=n).astype(np.int64)
    cum = np.cumsum(per_row[order])
    parts, start = [], 0
    while start < n:
        done = cum[start - 1] if start else 0
        end = max(int(np.searchsorted(cum, done + budget, side="right")), start + 1)
        parts.extend(ctx.block(order[start:end], max_cells, max_distance))
        start = end
    return _assemble_csr(parts, n)


class _MinimaContext:
    """The CSR/CSC views of V' and reusable scratch arrays for :func:`min_overlap_distance`."""

    def __init__(self, encoding: sp.csr_matrix) -> None:
        self.csr = encoding.tocsr()
        csc = encoding.tocsc()
        self.col_ptr, self.col_rows, self.col_vals = csc.indptr, csc.indices.astype(np.int64), csc.data
        self.col_len = np.diff(self.col_ptr)
        n = encoding.shape[0]
        self.seen = np.zeros(n, dtype=bool)
        self.slot = np.zeros(n, dtype=np.int64)

    def block(self, rows: np.ndarray, max_cells: int, max_distance: float | None) -> list:
        csr = self.csr
        lengths = csr.indptr[rows + 1] - csr.indptr[rows]
        entries = _ragged_arange(csr.indptr[rows], lengths)
        cols, vals = csr.indices[entries], csr.data[entries]
        col_len = self.col_len[cols]
        slots = _ragged_arange(self.col_ptr[cols], col_len)
        partner = self.col_rows[slots]
        self.seen[partner] = True
        reached = np.flatnonzero(self.seen)
        self.seen[reached] = False
        if rows.size > 1 and rows.size * reached.size > max_cells:  # too many accumulators: split
            half = rows.size // 2
            return self.block(rows[:half], max_cells, max_distance) + self.block(rows[half:], max_cells, max_distance)
        self.slot[reached] = np.arange(reached.size)
        mins = np.minimum(np.repeat(vals, col_len), self.col_vals[slots])
        local = np.repeat(np.repeat(np.arange(rows.size), lengths), col_len)
        acc = np.bincount(local * reached.size + self.slot[partner], weights=mins,
                          minlength=rows.size * reached.size)
        keys = np.flatnonzero(acc > 0)
        m = acc[keys]
        r, c = np.divmod(keys, reached.size)
        r, c = rows[r], reached[c]
        upper = r <= c  # each unordered pair is kept by its lower row only: exactly symmetric output
        r, c, m = r[upper], c[upper], m[upper]
        dist = np.maximum(1.0 - m / (2.0 - m), 0.0).astype(np.float32)
        dist[r == c] = 0.0
        if max_distance is not None:  # compared in float32, as DBSCAN compares them (see dbscan.py)
            keep = dist <= np.float32(max_distance)
            r, c, dist = r[keep], c[keep], dist[keep]
        return [(r.astype(np.int32), c.astype(np.int32), dist)]


def _assemble_csr(parts: list, n: int) -> sp.csr_matrix:
    """Symmetric CSR (sorted indices) from upper-triangle (row <= col, values) pieces, mirrored."""
    pieces = [(r, c, v) for r, c, v in parts] + [(c[r < c], r[r < c], v[r < c]) for r, c, v in parts]
    counts = np.zeros(n, dtype=np.int64)
    for r, _, _ in pieces:
        counts += np.bincount(r, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    fill = indptr[:-1].copy()
    for r, c, v in pieces:
        if r.size == 0:
            continue
        order = np.argsort(r, kind="stable")
        r, c, v = r[order], c[order], v[order]
        firsts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        sizes = np.diff(np.r_[firsts, r.size])
        at = fill[r] + np.arange(r.size) - np.repeat(firsts, sizes)
        indices[at], data[at] = c, v
        fill[r[firsts]] += sizes
    out = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    out.sort_indices()
    return out


def locality_order(expansion: sp.csr_matrix) -> np.ndarray:
    """[N] row order that keeps rows with shared neighbours close (reverse Cuthill-McKee on E + E^T)."""
    graph = (expansion + expansion.T).tocsr()
    return np.asarray(reverse_cuthill_mckee(graph, symmetric_mode=True), dtype=np.int64)


def _ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l)."""
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(int(lengths.sum()))

