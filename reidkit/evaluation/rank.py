"""Rank metrics: CMC, mAP and mINP from a query x gallery distance matrix, vectorised over queries.

Semantics (the official SYSU-MM01 MATLAB evaluation, github.com/wuancong/SYSU-MM01, and AGW's
``eval_metrics.py``, github.com/mangye16/Cross-Modal-Re-ID-baseline; docs/datasets.md, "Protocols, exactly"):

- Each query ranks the gallery by ascending distance. **Ties are broken by gallery index** (a stable
  sort, as MATLAB's ``sort`` and ``np.argsort(kind="stable")``); AGW's ``np.argsort`` default is not
  stable, so tied distances may rank differently there.
- Gallery entries marked in ``ignore`` are removed from that query's ranking before anything is counted.
- A query whose filtered gallery holds no entry of its identity is *not valid* and counts nowhere.
- With R true matches at 1-based ranks r_1 < ... < r_R of the filtered list: AP = (1/R) Σ_i i / r_i,
  INP = R / r_R; mAP and mINP are their means over valid queries.
- CMC@k: share of valid queries whose first true match is within the top k. With ``dedup_cmc`` the
  filtered identity list is first de-duplicated keeping first occurrences (SYSU-MM01, LLCM), so the
  rank is 1 + the number of other identities seen before the first true match. mAP and mINP always use
  the full filtered list.

How it is fast: no per-query loop and no argsort of the distance matrix. Per chunk of queries the rows
are sorted by value only (``np.sort``, SIMD), then each true match's rank is found by a batched binary
search of its own distance in its row (ties fixed up exactly by counting equal distances at smaller gallery indices).
Ignored entries are replaced by NaN, which never compares below or equal to anything. The slow, obvious
per-query implementation lives in ``reidkit.evaluation.reference`` and the tests hold the two equal.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: elements of a [chunk, G] working array; keeps the per-chunk temporaries at a few MB
_CHUNK_ELEMENTS = 1 << 20


def as_distance_array(dist: Any) -> np.ndarray:
    """``dist`` (numpy or torch, [Q, G]) as a float32/float64 numpy array; NaN is rejected."""
    if hasattr(dist, "detach"):  # torch.Tensor without importing torch here
        dist = dist.detach().cpu()
        if not dist.is_floating_point() or dist.element_size() < 4:
            dist = dist.double() if not dist.is_floating_point() else dist.float()
        dist = dist.numpy()
    d = np.asarray(dist)
    if d.ndim != 2:
        raise ValueError(f"dist must be a [num_query, num_gallery] matrix, got shape {d.shape}")
    if d.dtype not in (np.float32, np.float64):
        d = d.astype(np.float32 if d.dtype == np.float16 else np.float64)
    if np.isnan(d).any():
        raise ValueError("dist contains NaN; rank metrics need a total order of distances")
    return d


def _as_ids(ids: Any, n: int, what: str) -> np.ndarray:
    if hasattr(ids, "detach"):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{what} has {arr.shape[0]} entries but dist has {n} {what.split('_')[0]}s")
    return arr


def _as_ignore(ignore: Any, shape: tuple[int, int]) -> np.ndarray | None:
    if ignore is None:
        return None
    if hasattr(ignore, "detach"):
        ignore = ignore.detach().cpu().numpy()
    mask = np.asarray(ignore, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"ignore must have the shape of dist {shape}, got {mask.shape}")
    return mask if mask.any() else None


class _Gallery:
    """Gallery identities grouped once: per identity code, its gallery columns in ascending order."""

    def __init__(self, gallery_ids: np.ndarray, query_ids: np.ndarray) -> None:
        uniq, code = np.unique(gallery_ids, return_inverse=True)
        self.num_ids = len(uniq)
        self.order = np.argsort(code, kind="stable")  # columns grouped by identity, ascending inside
        self.grouped = bool(np.all(self.order[1:] > self.order[:-1])) if len(code) > 1 else True
        counts = np.bincount(code, minlength=self.num_ids)
        self.ends = np.cumsum(counts).astype(np.int64)
        self.starts = self.ends - counts
        # an unknown query identity gets code num_ids: an empty group
        self.counts = np.concatenate([counts, [0]]).astype(np.int64)
        self.width = max(int(counts.max()) if len(counts) else 0, 1)
        pos = np.clip(np.searchsorted(uniq, query_ids), 0, max(len(uniq) - 1, 0))
        known = uniq[pos] == query_ids if len(uniq) else np.zeros(len(query_ids), dtype=bool)
        self.query_code = np.where(known, pos, self.num_ids)

    def members(self, codes: np.ndarray) -> np.ndarray:
        """[len(codes), width] gallery columns of each identity code, ascending, padded with -1."""
        slot = np.arange(self.width)[None, :]
        first = np.concatenate([self.starts, [0]])[codes][:, None]
        inside = slot < self.counts[codes][:, None]
        return np.where(inside, self.order[np.where(inside, first + slot, 0)] if len(self.order) else -1, -1)


def _count_below(rows_sorted: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row r, how many entries of ``rows_sorted[r]`` (ascending, NaN last) are ``< values[r, j]``.

    A batched binary search (binary lifting): ceil(log2(G + 1)) vectorised steps over all rows at once.
    NaN entries never count; a NaN value counts nothing.
    """
    c, g = rows_sorted.shape
    flat = rows_sorted.reshape(-1)
    row_base = (np.arange(c, dtype=np.int64) * g)[:, None]
    below = np.zeros(values.shape, dtype=np.int64)
    step = 1 << int(np.ceil(np.log2(g + 1)))
    while step:
        trial = below + step
        probe = flat.take(row_base + np.minimum(trial, g) - 1)
        below = np.where((trial <= g) & (probe < values), trial, below)
        step >>= 1
    return below


def _masked_rows(d: np.ndarray, ign: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """``d[rows]`` with ignored entries as NaN."""
    return d[rows] if ign is None else np.where(ign[rows], np.nan, d[rows])


def _count_equal_before(d: np.ndarray, ign: np.ndarray | None, rows: np.ndarray, values: np.ndarray,
                        cols: np.ndarray) -> np.ndarray:
    """For each (row, value, column): kept entries of ``d[row]`` equal to value at a smaller column."""
    g = d.shape[1]
    out = np.empty(len(rows), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(g, 1))
    index = np.arange(g)
    for s in range(0, len(rows), step):
        r, v, t = rows[s:s + step], values[s:s + step], cols[s:s + step]
        equal = _masked_rows(d, ign, r) == v[:, None]
        out[s:s + step] = np.count_nonzero(equal & (index[None, :] < t[:, None]), axis=1)
    return out


def _chunk_metrics(d: np.ndarray, ign: np.ndarray | None, codes: np.ndarray, gal: _Gallery,
                   dedup_cmc: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid, first_rank, AP, INP) for one chunk of queries; ``d`` [c, G], ``codes`` [c]."""
    c, g = d.shape
    cols = gal.members(codes)  # [c, L] candidate true matches (the query identity's columns)
    safe_cols = np.maximum(cols, 0)
    vals = np.take_along_axis(d, safe_cols, axis=1).astype(d.dtype, copy=True)
    dropped = cols < 0
    if ign is not None:
        dropped |= np.take_along_axis(ign, safe_cols, axis=1)
    vals[dropped] = np.nan
    # true matches in ranking order: by distance, then by column (columns ascend in ``members``)
    o = np.argsort(vals, axis=1, kind="stable")
    vals = np.take_along_axis(vals, o, axis=1)
    cols = np.take_along_axis(cols, o, axis=1)
    is_match = ~np.isnan(vals)
    num_matches = is_match.sum(axis=1)
    valid = num_matches > 0

    s = d.copy() if ign is None else np.where(ign, np.nan, d)  # ignored entries never rank
    s.sort(axis=1)
    below = _count_below(s, vals)
    # entries equal to a match's distance sit at sorted positions below, below + 1, ...; the match is one
    after = np.take_along_axis(s, np.minimum(below + 1, g - 1), axis=1)
    tied = is_match & (below + 1 < g) & (after == vals)
    if tied.any():  # equal distances: the smaller gallery index ranks first (stable order)
        r, j = np.nonzero(tied)
        below[r, j] += _count_equal_before(d, ign, r, vals[r, j], cols[r, j])
    ranks = below + 1  # 1-based rank in the filtered list (meaningful where is_match)

    position = np.arange(1, vals.shape[1] + 1)[None, :]
    safe_r = np.maximum(num_matches, 1)
    ap = np.where(is_match, position / np.where(is_match, ranks, 1), 0.0).sum(axis=1) / safe_r
    last = np.take_along_axis(ranks, (safe_r - 1)[:, None], axis=1)[:, 0]
    inp = num_matches / last
    first = ranks[:, 0].copy()
    if dedup_cmc and valid.any():
        first = _dedup_first_rank(d, ign, vals[:, 0], cols[:, 0], tied[:, 0], gal)
    return valid, first, ap, inp


def _dedup_first_rank(d: np.ndarray, ign: np.ndarray | None, v0: np.ndarray, t0: np.ndarray,
                      tied0: np.ndarray, gal: _Gallery) -> np.ndarray:
    """1 + number of distinct identities with a kept entry ranked before each query's first true match."""
    before = d < v0[:, None]  # v0 is NaN for a query without match: nothing is before
    if tied0.any():
        r = np.flatnonzero(tied0)
        before[r] |= (d[r] == v0[r, None]) & (np.arange(d.shape[1])[None, :] < t0[r, None])
    if ign is not None:
        before &= ~ign
    grouped = before if gal.grouped else before[:, gal.order]
    # identities (contiguous column groups) holding at least one such entry, via a running count
    running = np.cumsum(grouped, axis=1, dtype=np.int32)
    at_end = running[:, gal.ends - 1]
    at_start = np.where(gal.starts > 0, running[:, np.maximum(gal.starts - 1, 0)], 0)
    return np.count_nonzero(at_end > at_start, axis=1) + 1


def rank_metrics(dist: Any, query_ids: Any, gallery_ids: Any, *, ignore: Any = None,
                 dedup_cmc: bool = False, max_rank: int = 20) -> dict[str, Any]:
    """CMC, mAP and mINP of a distance matrix (module docstring: exact semantics).

    Args:
        dist: [Q, G] distances, numpy or torch; smaller = closer. NaN is an error.
        query_ids: [Q] identity labels of the queries (any comparable values).
        gallery_ids: [G] identity labels of the gallery.
        ignore: optional boolean [Q, G]; True = this query skips this gallery entry.
        dedup_cmc: identity-deduplicated CMC (SYSU-MM01, LLCM).
        max_rank: length of the returned CMC curve.

    Returns:
        ``{"cmc": float64 [max_rank] fractions, "mAP", "mINP", "rank1", "rank5", "rank10", "rank20"
        (fractions), "num_valid": queries counted, "num_queries": Q}``.

    Raises:
        ValueError: on malformed inputs, or when no query has a true match left in its gallery.
    """
    d = as_distance_array(dist)
    q, g = d.shape
    q_ids = _as_ids(query_ids, q, "query_ids")
    g_ids = _as_ids(gallery_ids, g, "gallery_ids")
    ign = _as_ignore(ignore, d.shape)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    gal = _Gallery(g_ids, q_ids)

    valid = np.zeros(q, dtype=bool)
    first = np.zeros(q, dtype=np.int64)
    ap = np.zeros(q)
    inp = np.zeros(q)
    step = max(1, _CHUNK_ELEMENTS // max(g, 1))
    for s in range(0, q, step):
        e = min(q, s + step)
        valid[s:e], first[s:e], ap[s:e], inp[s:e] = _chunk_metrics(
            d[s:e], None if ign is None else ign[s:e], gal.query_code[s:e], gal, dedup_cmc)

    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(f"none of the {q} queries has a true match in its (filtered) gallery")
    if num_valid < q:
        log.debug("%d of %d queries have no true match and are not counted", q - num_valid, q)
    out: dict[str, Any] = {
        "cmc": cmc_curve(first[valid], max_rank),
        "mAP": float(ap[valid].mean()),
        "mINP": float(inp[valid].mean()),
        "num_valid": num_valid,
        "num_queries": q,
    }
    full = cmc_curve(first[valid], 20)
    for k in (1, 5, 10, 20):
        out[f"rank{k}"] = float(full[k - 1])
    return out


def cmc_curve(first_ranks: np.ndarray, max_rank: int) -> np.ndarray:
    """[max_rank] share of queries whose first true match is at rank <= k (k = 1..max_rank)."""
    hits = np.bincount(np.minimum(first_ranks, max_rank + 1) - 1, minlength=max_rank + 1)[:max_rank]
    return np.cumsum(hits) / max(len(first_ranks), 1)
