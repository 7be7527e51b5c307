"""Exact kNN on CPU from bfloat16 nominations, float32 re-scoring and a per-row certificate.

CPUs with native bfloat16 (AVX512-BF16, AMX) multiply bfloat16 several times faster than float32. The
search therefore runs in three steps:

1. **Nominate** (bfloat16): the similarity matrix is swept in ``block`` x ``block`` tiles, upper
   triangle only (it is symmetric; each tile serves its rows and its columns). Every row keeps its
   ``kc = k + margin`` best candidates; a tile entry is looked at only if it beats the row's current
   kc-th value (a vectorised comparison, far cheaper than ``topk`` on every tile).
2. **Re-score** (float32): each row's first ``k`` candidates get exact float32 inner products, then every
   other candidate whose bfloat16 value could still reach the k-th exact value (see
   :func:`upper_bound`). The exact top ``k`` of the candidates follows.
3. **Certify**: a row is exact if its k-th exact similarity beats the upper bound of the kc-th
   nominated value: no row outside the candidates can then be in its top ``k``. Rows that fail are
   searched again in float32 against all rows.

The bound is rigorous for round-to-nearest bfloat16 inputs and outputs and float32 accumulation in any
order (oneDNN's CPU kernels), so the lists are those of a float32 search, up to exact ties.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from ._progress import StepLog
from .dots import pair_dots, row_dots

log = logging.getLogger(__name__)

_U32 = 2.0 ** -24  # float32 unit roundoff
_U_BF16 = 2.0 ** -8  # bfloat16 unit roundoff (8-bit significand)


def mixed_knn(x: Tensor, k: int, *, margin: int, block: int = 2048,
              progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(indices [N, k] int64, similarities [N, k] float32), float32-exact, for CPU float32 ``x`` [N, D]."""
    n, dim = x.shape
    xn = x.numpy()
    kc = min(n, k + margin)
    approx, cand, err = nominate(x, kc, block, progress)
    order = np.argsort(-approx, axis=1, kind="stable")
    approx, cand = np.take_along_axis(approx, order, 1), np.take_along_axis(cand, order, 1)
    limits = _Limits(err, dim)

    exact = np.full((n, kc), -np.inf, dtype=np.float32)
    exact[:, :k] = row_dots(xn, cand[:, :k])
    kth = exact[:, :k].min(axis=1)
    r, c = np.nonzero(limits.upper(approx[:, k:]) >= kth[:, None])
    c += k
    exact[r, c] = pair_dots(xn, r, cand[r, c])
    rescored = k * n + r.size

    top = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    values, indices = np.take_along_axis(exact, top, 1), np.take_along_axis(cand, top, 1)
    failed = np.zeros(0, dtype=np.int64)
    if kc < n:
        failed = np.flatnonzero(~(values[:, -1] > limits.upper(approx[:, -1])))
        if failed.size:
            v, i = exact_rows(x, failed, k)
            values[failed], indices[failed] = v, i
    log.debug("mixed-precision kNN N=%d k=%d: %d candidates per row, %.1f re-scored in float32 per row, "
              "%d rows re-searched in float32", n, k, kc, rescored / n, failed.size)
    return indices, values


class _Limits:
    """Upper bound on a float32 inner product given its bfloat16 tile value, per row (docstring of
    :func:`upper_bound`)."""

    def __init__(self, err: np.ndarray, dim: int) -> None:
        norm, e = err[:, 0].astype(np.float64), err[:, 1].astype(np.float64)
        n_max, e_max = float(norm.max()), float(e.max())
        gamma = dim * _U32 / (1 - dim * _U32)
        self.slack = (gamma * (norm + e) * (n_max + e_max) + gamma * norm * n_max
                      + e * n_max + norm * e_max + e * e_max + 1e-6)

    def upper(self, tile_value: np.ndarray) -> np.ndarray:
        return upper_bound(tile_value, self.slack)


def upper_bound(tile_value: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """Bound on the float32 value of a pair whose bfloat16 tile value is ``tile_value`` (row-wise).

    The tile value t is the round-to-nearest bfloat16 of the float32-accumulated product of the
    rounded rows a~ = a + e_a, b~ = b + e_b. The real a.b is at most
        t + u |t| / (1 - u)                                (output rounding, u = 2^-8)
          + gamma_D |a~| |b~|                              (float32 accumulation, any order)
          + |e_a| |b| + |a| |e_b| + |e_a| |e_b|            (input rounding)
    and any float32 evaluation of a.b exceeds it by at most gamma_D |a| |b|; ``slack`` [R] holds all
    but the first term, with |b| and |e_b| replaced by their maxima over the rows.
    """
    t = tile_value.astype(np.float64)
    s = slack.reshape((-1,) + (1,) * (t.ndim - 1))
    return t + _U_BF16 * np.abs(t) / (1 - _U_BF16) + s


def nominate(x: Tensor, kc: int, block: int, progress: bool):
    """bfloat16 top-``kc`` candidates of every row (unsorted) and the rounding data of every row.

    Returns approx [N, kc] float32 (bfloat16 values), cand [N, kc] int64, err [N, 2] float32 (row norm,
    norm of the row's bfloat16 rounding error).
    """
    n, dim = x.shape
    kc = min(kc, n)
    lists = _TopLists(n, kc)
    err = np.empty((n, 2), dtype=np.float32)
    starts = list(range(0, n, block))
    bufs = _TileBuffers(min(block, n), dim)
    steps = StepLog(log, f"kNN bfloat16 tiles (N={n})", len(starts) * (len(starts) + 1) // 2, progress)
    for s in starts:  # diagonal tiles first: every row starts with a finite threshold
        a = bufs.rows(x, s, block, "a")
        err[s:s + a.shape[0], 0] = torch.linalg.vector_norm(x[s:s + block], dim=1).numpy()
        err[s:s + a.shape[0], 1] = torch.linalg.vector_norm(a.float() - x[s:s + block], dim=1).numpy()
        lists.init_rows(s, _widen(bufs.product(a, a)))
    done = len(starts)
    for p, s in enumerate(starts):
        a = bufs.rows(x, s, block, "a")
        for s2 in starts[p + 1:]:
            bits = bufs.product(a, bufs.rows(x, s2, block, "b"))
            rows, cols = bits.shape
            r, c = np.divmod(np.flatnonzero(bits >= lists.admission(s, rows)[:, None]), cols)
            lists.fold(s + r, s2 + c, _widen(bits[r, c]))
            r, c = np.divmod(np.flatnonzero(bits >= lists.admission(s2, cols)[None, :]), cols)
            order = np.argsort(c.astype(np.int16), kind="stable")  # radix sort: c < block <= 2^15
            r, c = r[order], c[order]
            lists.fold(s2 + c, s + r, _widen(bits[r, c]))
            done += 1
            steps.update(done)
    steps.finish()
    return lists.values, lists.indices, err


def _widen(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (int16): the bfloat16 is the high half of the float32."""
    return (bits.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


class _TileBuffers:
    """Preallocated bfloat16 row blocks and product tile (fresh large allocations page-fault)."""

    def __init__(self, block: int, dim: int) -> None:
        self.block = {"a": torch.empty(block, dim, dtype=torch.bfloat16),
                      "b": torch.empty(block, dim, dtype=torch.bfloat16)}
        self.out16 = torch.empty(block * block, dtype=torch.bfloat16)

    def rows(self, x: Tensor, start: int, block: int, which: str) -> Tensor:
        src = x[start:start + block]
        dst = self.block[which][:src.shape[0]]
        dst.copy_(src)
        return dst

    def product(self, a: Tensor, b: Tensor) -> np.ndarray:
        """[len(a), len(b)] int16 bit patterns of the bfloat16 product ``a @ b.T`` (a reused buffer)."""
        m, m2 = a.shape[0], b.shape[0]
        out = self.out16[:m * m2].view(m, m2)
        torch.mm(a, b.T, out=out)
        return out.view(torch.int16).numpy()


class _TopLists:
    """Running unsorted top-``kc`` lists with each row's current kc-th value as admission threshold."""

    def __init__(self, n: int, kc: int) -> None:
        self.kc = kc
        self.values = np.full((n, kc), -np.inf, dtype=np.float32)
        self.indices = np.full((n, kc), -1, dtype=np.int64)
        self.threshold = np.full(n, -np.inf, dtype=np.float32)

    def init_rows(self, r0: int, tile: np.ndarray) -> None:
        m = tile.shape[0]
        take = min(self.kc, tile.shape[1])
        part = np.argpartition(tile, tile.shape[1] - take, axis=1)[:, tile.shape[1] - take:]
        self.values[r0:r0 + m, :take] = np.take_along_axis(tile, part, 1)
        self.indices[r0:r0 + m, :take] = part + r0
        self.threshold[r0:r0 + m] = self.values[r0:r0 + m].min(axis=1)

    def admission(self, start: int, count: int) -> np.ndarray:
        """[count] int16 keys: a bfloat16 tile entry with bits >= key may enter the row's list.

        For a positive threshold t, bit patterns order like values for all entries (negative ones are
        negative as int16), so ``bits >= bits(t) + 1`` is exactly ``value > t``; rows whose threshold is
        not positive admit everything (and their lists sort it out).
        """
        t = self.threshold[start:start + count]
        key = (t.view(np.uint32) >> 16).astype(np.int32) + 1
        return np.where(t > 0, key, -32768).astype(np.int16)

    def fold(self, rows: np.ndarray, partners: np.ndarray, values: np.ndarray) -> None:
        """Merge candidate entries (``rows`` sorted ascending, global ``partners``, ``values``)."""
        if rows.size == 0:
            return
        firsts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        counts = np.diff(np.r_[firsts, rows.size])
        touched = rows[firsts]
        width = int(counts.max())
        vals = np.full((touched.size, self.kc + width), -np.inf, dtype=np.float32)
        idx = np.full((touched.size, self.kc + width), -1, dtype=np.int64)
        vals[:, :self.kc], idx[:, :self.kc] = self.values[touched], self.indices[touched]
        slot = np.repeat(np.arange(touched.size), counts)
        within = self.kc + np.arange(rows.size) - np.repeat(firsts, counts)
        vals[slot, within] = values
        idx[slot, within] = partners
        keep = np.argpartition(vals, width, axis=1)[:, width:]
        self.values[touched] = np.take_along_axis(vals, keep, 1)
        self.indices[touched] = np.take_along_axis(idx, keep, 1)
        self.threshold[touched] = self.values[touched].min(axis=1)


def exact_rows(x: Tensor, rows: np.ndarray, k: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """float32 top-``k`` (values, indices) of the given rows against all rows."""
    vals, idx = [], []
    for s in range(0, rows.size, chunk):
        v, i = (x[torch.as_tensor(rows[s:s + chunk])] @ x.T).topk(k, dim=1)
        vals.append(v.numpy())
        idx.append(i.numpy())
    return np.concatenate(vals), np.concatenate(idx)
