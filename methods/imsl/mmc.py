"""MMC, modality mean clustering (METHODS.md §3.6): k-means whose centroid is the mean of the modality means.

For cluster k with members in the modalities M_k, the update is

    c_k = (1 / |M_k|) * sum_{m in M_k} mean{ f_i : i in k, m_i = m },

so every modality weighs the same whatever its sample count, and a cluster is not pulled toward the
modality that dominates it. Each centroid starts as the average of one random sample per modality.
Assignment is by Euclidean distance; empty clusters are dropped (K can shrink); the last assignment is
returned with consecutive labels, as in the official ``kmeans_with_modal``. ``kmeans`` (the MMC-off
ablation) differs only in the update: the plain mean of all members.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

CentroidUpdate = Callable[[Tensor, Tensor, Tensor, int, int], tuple[Tensor, Tensor]]


def modality_mean_centroids(feats: Tensor, labels: Tensor, modality_ids: Tensor, num_clusters: int,
                            num_modalities: int) -> tuple[Tensor, Tensor]:
    """MMC's update: per cluster, the unweighted mean of its per-modality means.

    Args:
        feats: [N, D] features; labels: [N] int64 in [0, K); modality_ids: [N] int64 in [0, M).
    Returns:
        centroids [K, D] (zeros for empty clusters) and present [K] bool (the cluster has a member).
    """
    means, has = cluster_modality_means(feats, labels, modality_ids, num_clusters, num_modalities)
    n_modalities = has.sum(dim=1, keepdim=True)
    centroids = (means * has.unsqueeze(-1)).sum(dim=1) / n_modalities.clamp(min=1)
    return centroids, n_modalities.squeeze(1) > 0


def member_mean_centroids(feats: Tensor, labels: Tensor, modality_ids: Tensor, num_clusters: int,
                          num_modalities: int) -> tuple[Tensor, Tensor]:
    """Plain k-means update: per cluster, the mean of all members ([K, D], present [K])."""
    sums = feats.new_zeros(num_clusters, feats.shape[1]).index_add_(0, labels, feats)
    counts = torch.bincount(labels, minlength=num_clusters)
    return sums / counts.clamp(min=1).unsqueeze(1).to(feats.dtype), counts > 0


def cluster_modality_means(feats: Tensor, labels: Tensor, modality_ids: Tensor, num_clusters: int,
                           num_modalities: int) -> tuple[Tensor, Tensor]:
    """Per (cluster, modality) mean feature [K, M, D] (zeros where empty) and has [K, M] bool."""
    key = labels * num_modalities + modality_ids
    cells = num_clusters * num_modalities
    sums = feats.new_zeros(cells, feats.shape[1]).index_add_(0, key, feats)
    counts = torch.bincount(key, minlength=cells)
    means = sums / counts.clamp(min=1).unsqueeze(1).to(feats.dtype)
    return means.view(num_clusters, num_modalities, -1), (counts > 0).view(num_clusters, num_modalities)


def modality_mean_init(feats: Tensor, modality_ids: Tensor, k: int, num_modalities: int,
                       generator: np.random.Generator) -> Tensor:
    """[k, D] initial centroids: each the average of one random sample of every modality present."""
    picks = []
    for m in range(num_modalities):
        rows = torch.nonzero(modality_ids == m).squeeze(1).cpu().numpy()
        if len(rows):
            picks.append(rows[generator.choice(len(rows), size=k, replace=len(rows) < k)])
    index = torch.as_tensor(np.stack(picks, axis=1), device=feats.device)  # [k, M_present]
    return feats[index].mean(dim=1)


def assign(feats: Tensor, centroids: Tensor, chunk: int = 16384) -> Tensor:
    """[N] index of the nearest centroid by Euclidean distance (ties: the lowest index)."""
    c_sq = (centroids * centroids).sum(dim=1)
    out = []
    for start in range(0, feats.shape[0], chunk):
        f = feats[start:start + chunk]
        out.append((c_sq.unsqueeze(0) - 2.0 * f @ centroids.T).argmin(dim=1))  # |f|^2 is constant per row
    return torch.cat(out)


def mmc(feats: Tensor, modality_ids: Tensor | np.ndarray, k: int, *, iterations: int = 5,
        generator: np.random.Generator, update: str = "mmc") -> tuple[Tensor, Tensor]:
    """Cluster ``feats`` [N, D] into at most ``k`` clusters.

    Args:
        modality_ids: [N] int64 modality index of each row.
        update: ``"mmc"`` (mean of modality means) or ``"kmeans"`` (mean of members).
        generator: seeds the initialisation (the engine's per-epoch generator: deterministic per epoch).
    Returns:
        labels [N] int64 in [0, K') and centroids [K', D] consistent with them (K' <= k: empty clusters
        are dropped and the rest relabelled in order).
    """
    step: CentroidUpdate = {"mmc": modality_mean_centroids, "kmeans": member_mean_centroids}[update]
    feats = feats.float()
    modality_ids = torch.as_tensor(modality_ids, dtype=torch.int64, device=feats.device)
    num_modalities = int(modality_ids.max()) + 1
    k = max(1, min(int(k), feats.shape[0]))
    centroids = modality_mean_init(feats, modality_ids, k, num_modalities, generator)
    labels = assign(feats, centroids)
    for _ in range(iterations):
        labels = assign(feats, centroids)
        centroids, present = step(feats, labels, modality_ids, centroids.shape[0], num_modalities)
        new_id = torch.cumsum(present.long(), dim=0) - 1
        labels, centroids = new_id[labels], centroids[present]
    return labels, centroids
