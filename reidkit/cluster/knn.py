"""Exact k-nearest neighbours of L2-normalised features (inner product = 1 - squared distance / 2).

``knn(features, k)`` returns, for every row, its ``k`` most similar rows (itself included, normally
first), sorted by decreasing inner product. For unit vectors that is ordering by squared Euclidean
distance, so these are the lists the k-reciprocal lineage gets from faiss.

Backends (``backend=``):

* ``"torch"`` (and ``"auto"``), on the features' device (or ``device=``):
  - CPU with native bfloat16 (``precision="mixed"``, the default there): bfloat16 tiles nominate
    candidates, float32 re-scores them and a rigorous per-row certificate guarantees the float32 answer
    (:mod:`reidkit.cluster.mixed`); about 3x faster than float32 on such CPUs, memory O(N k + tile);
  - CUDA, or ``precision="fp32"``: chunked float32 ``x @ x.T`` + ``topk`` (:func:`chunked_knn`), TF32
    switched off for the duration so the products stay float32.
* ``"faiss"``: ``IndexFlatIP``, on the GPU when faiss sees one, on the CPU otherwise (exact float32).
  ``search="ivf" | "hnsw"`` selects faiss approximate indexes for very large N (:mod:`reidkit.cluster.ann`).

Exact means: the lists a float32 evaluation of ``x @ x.T`` gives, up to pairs whose similarities tie
within float32 rounding (~1e-7), which any two float32 implementations may order differently.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import Tensor

from reidkit.hardware import native_bf16

from ._progress import StepLog
from .ann import faiss_knn
from .mixed import mixed_knn
from .neighbors import Neighbors, as_features

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "faiss")
SEARCHES = ("exact", "ivf", "hnsw")
PRECISIONS = ("auto", "mixed", "fp32")


def knn(features, k: int, *, backend: str = "auto", search: str = "exact", precision: str = "auto",
        margin: int | None = None, block: int | None = None, device: torch.device | str | None = None,
        progress: bool = False) -> Neighbors:
    """The ``k`` nearest rows of every row of ``features`` [N, D] (L2-normalised float32), by inner product.

    Args:
        k: list length, 1 <= k <= N; each row's list includes the row itself.
        backend: ``"auto"`` (= ``"torch"``), ``"torch"`` or ``"faiss"`` (module docstring).
        search: ``"exact"``, or an approximate faiss index, ``"ivf"`` or ``"hnsw"``
            (:func:`reidkit.cluster.ann.faiss_knn` has their options).
        precision: torch backend only. ``"auto"``: ``"mixed"`` on a CPU with native bfloat16, ``"fp32"``
            otherwise and on CUDA. Both give float32-exact lists.
        margin: extra candidates per row nominated by the bfloat16 pass (default ``max(32, k)``).
        block: tile size (default 2048 on CPU, 8192 on CUDA).
        device: where the torch backend computes (default: the features' device).
        progress: log progress at INFO instead of DEBUG.
    Returns:
        :class:`Neighbors` as numpy arrays.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    x = as_features(features, device=device)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, N={n}], got {k}")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    if backend == "faiss" or search != "exact":
        if backend == "torch":
            raise ValueError(f"search={search!r} needs faiss; use backend='auto' or 'faiss'")
        return faiss_knn(x, k, index="flat" if search == "exact" else search, progress=progress)
    return _torch_knn(x, k, precision=precision, margin=margin, block=block, progress=progress)


def _torch_knn(x: Tensor, k: int, *, precision: str, margin: int | None, block: int | None,
               progress: bool) -> Neighbors:
    cuda = x.device.type == "cuda"
    if precision == "auto":
        precision = "mixed" if (not cuda and native_bf16()) else "fp32"
    if precision == "mixed" and cuda:
        log.debug("precision='mixed' is a CPU path; using float32 on %s", x.device)
        precision = "fp32"
    if precision == "mixed" and x.shape[0] > k:
        indices, values = mixed_knn(x, k, margin=max(32, k) if margin is None else int(margin),
                                    block=int(block or 2048), progress=progress)
        return Neighbors(indices, values)
    chunk = int(block) if block else (max(256, min(8192, (1 << 28) // x.shape[0])) if cuda else 1024)
    with _no_tf32():
        return chunked_knn(x, k, chunk=chunk, progress=progress)


def chunked_knn(features, k: int, *, chunk: int = 1024, progress: bool = False) -> Neighbors:
    """float32 ``x[rows] @ x.T`` for ``chunk`` rows at a time, then ``topk``: the plain exact search
    (the CUDA path, and the CPU float32 floor). Memory: ``chunk`` x N similarities."""
    x = as_features(features)
    n = x.shape[0]
    vals, idx = [], []
    steps = StepLog(log, f"kNN float32 (N={n})", n, progress)
    for s in range(0, n, chunk):
        v, i = (x[s:s + chunk] @ x.T).topk(k, dim=1)
        vals.append(v.cpu())
        idx.append(i.cpu())
        steps.update(min(s + chunk, n))
    steps.finish()
    return Neighbors(torch.cat(idx).numpy(), torch.cat(vals).numpy())


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    """float32 matmuls in true float32 on CUDA for the duration (TF32 would break exactness)."""
    matmul = torch.backends.cuda.matmul
    saved = matmul.allow_tf32
    matmul.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32 = saved


def brute_force_knn(features, k: int) -> Neighbors:
    """Reference: float32 x @ x.T and ``topk`` on the whole matrix (small N only; O(N^2) memory)."""
    x = as_features(features)
    v, i = (x @ x.T).topk(k, dim=1)
    return Neighbors(i.cpu().numpy(), v.cpu().numpy())

