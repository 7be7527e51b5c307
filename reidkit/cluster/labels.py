"""Pseudo-labels (Jaccard + DBSCAN), consecutive relabelling and cluster statistics."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from reidkit.distributed import on_rank0

from .dbscan import dbscan
from .jaccard import jaccard_distance
from .knn import Neighbors

log = logging.getLogger(__name__)


@on_rank0  # distributed runs: computed once on rank 0, the result sent to every rank
def pseudo_labels(features, *, eps: float = 0.6, min_samples: int = 4, k1: int = 30, k2: int = 6,
                  backend: str = "auto", search: str = "exact", neighbors: Neighbors | None = None,
                  progress: bool = False) -> np.ndarray:
    """[N] int64 cluster labels of ``features`` [N, D] (L2-normalised float32), -1 for outliers.

    The lineage's pseudo-labelling: k-reciprocal Jaccard distance (k1, k2) and DBSCAN (eps,
    min_samples) on it. Only pairs within ``eps`` are kept between the two steps, which changes
    nothing for DBSCAN and keeps memory at O(N * neighbours). Labels are numbered as sklearn numbers
    them (by the lowest-index core point of each cluster), so they equal the dense lineage's.

    Args:
        backend, search: kNN backend ("auto", "torch", "faiss") and search ("exact", or approximate
            "ivf" / "hnsw") for :func:`reidkit.cluster.knn`.
        neighbors: precomputed kNN lists (e.g. approximate, :func:`reidkit.cluster.ann.faiss_knn`).
        progress: log each step's progress at INFO.
    """
    start = time.perf_counter()
    dist = jaccard_distance(features, k1=k1, k2=k2, backend=backend, search=search, neighbors=neighbors,
                            max_distance=eps, progress=progress)
    labels = dbscan(dist, eps=eps, min_samples=min_samples)
    log.log(logging.INFO if progress else logging.DEBUG, "pseudo-labels: %s (%.1f s)",
            cluster_statistics(labels).summary(), time.perf_counter() - start)
    return labels


def relabel(labels) -> np.ndarray:
    """[N] int64 labels renumbered 0..K-1 in increasing order of the old ids; negatives become -1."""
    labels = _numpy_labels(labels)
    out = np.full(labels.shape, -1, dtype=np.int64)
    valid = labels >= 0
    _, out[valid] = np.unique(labels[valid], return_inverse=True)
    return out


@dataclass(frozen=True)
class ClusterStatistics:
    """Counts of one labelling. Sizes are over clusters (outliers excluded).

    Attributes:
        num_samples, num_clusters, num_outliers: counts; outlier_fraction = num_outliers / num_samples.
        size_min, size_median, size_max: cluster sizes (0 when there is no cluster).
        singletons: clusters of one sample.
        mixed_clusters: clusters with members of more than one modality (0 without modalities).
        mixed_sample_fraction: share of clustered samples that sit in a mixed cluster.
        clusters_per_modality: modality index -> number of clusters with a member of that modality.
    """

    num_samples: int
    num_clusters: int
    num_outliers: int
    outlier_fraction: float
    size_min: int
    size_median: float
    size_max: int
    singletons: int
    mixed_clusters: int = 0
    mixed_sample_fraction: float = 0.0
    clusters_per_modality: dict | None = None

    def summary(self) -> str:
        text = (f"{self.num_clusters} clusters, {self.num_outliers} outliers ({100 * self.outlier_fraction:.1f}%), "
                f"sizes {self.size_min}/{self.size_median:g}/{self.size_max} (min/median/max)")
        if self.clusters_per_modality is not None:
            text += f", {self.mixed_clusters} mixed-modality"
        return text

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def cluster_statistics(labels, modalities=None) -> ClusterStatistics:
    """Statistics of ``labels`` [N] (-1 = outlier); with ``modalities`` [N] (int indices) also how many
    clusters mix modalities."""
    labels = _numpy_labels(labels)
    valid = labels >= 0
    sizes = np.bincount(labels[valid]) if valid.any() else np.zeros(0, dtype=np.int64)
    sizes = sizes[sizes > 0]
    n = labels.size
    stats = {"num_samples": n, "num_clusters": int(sizes.size), "num_outliers": int(n - valid.sum()),
             "outlier_fraction": float((n - valid.sum()) / n) if n else 0.0,
             "size_min": int(sizes.min()) if sizes.size else 0,
             "size_median": float(np.median(sizes)) if sizes.size else 0.0,
             "size_max": int(sizes.max()) if sizes.size else 0, "singletons": int((sizes == 1).sum())}
    if modalities is not None:
        modalities = _numpy_labels(modalities)
        if modalities.shape != labels.shape:
            raise ValueError(f"modalities must have shape {labels.shape}, got {modalities.shape}")
        pairs = np.unique(np.stack([labels[valid], modalities[valid]], axis=1), axis=0)
        per_cluster = np.bincount(pairs[:, 0]) if pairs.size else np.zeros(0, dtype=np.int64)
        mixed = np.flatnonzero(per_cluster > 1)
        stats.update(mixed_clusters=int(mixed.size),
                     mixed_sample_fraction=float(np.isin(labels[valid], mixed).mean()) if valid.any() else 0.0,
                     clusters_per_modality={int(m): int((pairs[:, 1] == m).sum()) for m in np.unique(modalities)})
    return ClusterStatistics(**stats)


def _numpy_labels(labels) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    return labels.astype(np.int64, copy=False)
