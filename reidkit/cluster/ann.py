"""faiss k-nearest-neighbour search: exact flat indexes, and approximate IVF / HNSW for very large N.

The exact search of N rows costs N^2 D multiply-adds; at a few hundred thousand images that is hours on a
CPU. The sparse Jaccard pipeline itself is O(N k) in memory, so with an approximate kNN the clustering
scales to N where the dense lineage (three N x N matrices) would need terabytes:

* ``"ivf"``: ``IndexIVFFlat`` (inner product), ``nlist`` cells (default 4 sqrt(N)), ``nprobe`` probed
  (default 32). Stores a float32 copy of the features.
* ``"hnsw"``: ``IndexHNSWFlat`` (inner product), ``M`` links per node, ``ef_search`` beam (default
  max(2k, 64)). CPU only.
* ``"flat"``: ``IndexFlatIP``, exact.

Flat and IVF indexes move to the GPU when faiss sees one (``gpu="auto"``). The similarities returned are
the index's float32 inner products, rows sorted by decreasing similarity. Measure what an approximate
index costs in recall with :func:`knn_recall` against an exact search on a sample, and in labels with
the adjusted Rand index (benchmarks/clustering.md).
"""
from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ._progress import StepLog
from .neighbors import Neighbors, as_features

log = logging.getLogger(__name__)

INDEXES = ("flat", "ivf", "hnsw")


def faiss_knn(features, k: int, *, index: str = "flat", nlist: int | None = None, nprobe: int = 32,
              hnsw_m: int = 32, ef_search: int | None = None, train_iterations: int = 10,
              gpu: str | bool = "auto", seed: int = 0,
              chunk: int = 16384, progress: bool = False) -> Neighbors:
    """The ``k`` most similar rows of every row of ``features`` [N, D] (itself included) with faiss.

    Args:
        index: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (approximate; module docstring).
        nlist, nprobe: IVF cells and cells probed per query; train_iterations: k-means rounds that
            place the cells (on 40 x nlist sampled rows). hnsw_m, ef_search: HNSW parameters.
        gpu: ``"auto"`` (use a GPU when faiss has one), True or False.
        seed: seeds the IVF training sample.
        chunk: queries per search call (progress is logged per chunk).
    """
    import faiss

    if index not in INDEXES:
        raise ValueError(f"index must be one of {INDEXES}, got {index!r}")
    x = as_features(features)
    xn = np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
    n, dim = xn.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, N={n}], got {k}")
    use_gpu = (faiss.get_num_gpus() > 0) if gpu == "auto" else bool(gpu)
    steps = StepLog(log, f"faiss {index} kNN (N={n}, gpu={use_gpu and index != 'hnsw'})", n, progress)
    if index == "flat":
        idx = faiss.IndexFlatIP(dim)
    elif index == "ivf":
        nlist = int(nlist or max(1, min(n // 39, round(4 * math.sqrt(n)))))
        idx = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        idx.cp.niter = int(train_iterations)
        rng = np.random.default_rng(seed)
        train = xn[np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))]
        idx.train(train)
        idx.nprobe = min(int(nprobe), nlist)
    else:
        idx = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efSearch = int(ef_search or max(2 * k, 64))
    if use_gpu and index != "hnsw":
        resources = faiss.StandardGpuResources()
        idx = faiss.index_cpu_to_gpu(resources, torch.cuda.current_device() if torch.cuda.is_available() else 0, idx)
    idx.add(xn)
    sims = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, chunk):
        sims[s:s + chunk], ids[s:s + chunk] = idx.search(xn[s:s + chunk], k)
        steps.update(min(s + chunk, n))
    steps.finish()
    missing = int((ids < 0).sum())
    if missing:
        log.warning("faiss %s search returned %d empty slots (raise nprobe / ef_search)", index, missing)
    return Neighbors(ids, sims)


def knn_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over rows of |found[i] n truth[i]| / |truth[i]| for neighbour tables [N, k'] and [N, k]."""
    n = truth.shape[0]
    if found.shape[0] != n:
        raise ValueError(f"found has {found.shape[0]} rows, truth {n}")
    big = int(max(found.max(initial=0), truth.max(initial=0))) + 1
    truth_keys = np.sort((np.arange(n)[:, None] * big + truth).reshape(-1))
    found_keys = (np.arange(n)[:, None] * big + found).reshape(-1)[found.reshape(-1) >= 0]
    found_keys = np.unique(found_keys)
    at = np.minimum(np.searchsorted(truth_keys, found_keys), truth_keys.size - 1)
    return float((truth_keys[at] == found_keys).sum() / truth.size)
