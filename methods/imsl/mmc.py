"""MMC, modality mean clustering (docs/methods.md, IMSL: MMC): k-means whose centroid is the mean of the
modality means.

For cluster k with members in the modalities M_k, the update is

    c_k = (1 / |M_k|) * sum_{m in M_k} mean{ f_i : i in k, m_i = m },

so every modality weighs the same whatever its sample count, and a cluster is not pulled toward the
modality that dominates it. Each centroid starts as the average of one random sample per modality (the
official initialisation; ``init="k-means++"`` seeds it by k-means++ instead, a reidkit option: same
objective and update, measured in benchmarks/imsl.md).
Assignment is by Euclidean distance; empty clusters are dropped (K can shrink); the last assignment is
returned with consecutive labels, as in the official ``kmeans_with_modal``. ``kmeans`` (the MMC-off
ablation) differs only in the update: the plain mean of all members.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from reidkit.cluster import kmeans, mean_update, modality_centroids


def modality_mean_centroids(feats: Tensor, labels: Tensor, modality_ids: Tensor, num_clusters: int,
                            num_modalities: int) -> tuple[Tensor, Tensor]:
    """MMC's update: per cluster, the unweighted mean of its per-modality means.

    Args:
        feats: [N, D] features; labels: [N] int64 in [0, K); modality_ids: [N] int64 in [0, M).
    Returns:
        centroids [K, D] (zeros for empty clusters) and present [K] bool (the cluster has a member).
    """
    means, has = modality_centroids(feats, labels, modality_ids, num_clusters, num_modalities, normalize=False)
    n_modalities = has.sum(dim=1, keepdim=True)
    centroids = (means * has.unsqueeze(-1)).sum(dim=1) / n_modalities.clamp(min=1).to(means.dtype)
    return centroids, n_modalities.squeeze(1) > 0


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


def mmc(feats: Tensor, modality_ids: Tensor | np.ndarray, k: int, *, iterations: int = 5,
        generator: np.random.Generator, update: str = "mmc", init: str = "official") -> tuple[Tensor, Tensor]:
    """Cluster ``feats`` [N, D] into at most ``k`` clusters with ``reidkit.cluster.kmeans``.

    Args:
        modality_ids: [N] int64 modality index of each row.
        iterations: assignment + update rounds, as in the official loop (it may stop earlier once no
            label changes, which gives the same result).
        update: ``"mmc"`` (mean of modality means) or ``"kmeans"`` (mean of members).
        generator: seeds the initialisation (the engine's per-epoch generator: deterministic per epoch).
        init: ``"official"`` (each centroid the mean of one random sample per modality) or ``"k-means++"``
            (D^2 seeding over all samples, whatever their modality).
    Returns:
        labels [N] int64 in [0, K') and centroids [K', D] consistent with them (K' <= k: empty clusters
        are dropped and the rest relabelled in order).
    """
    feats = feats.float()
    modality_ids = torch.as_tensor(modality_ids, dtype=torch.int64, device=feats.device)
    num_modalities = int(modality_ids.max()) + 1
    k = max(1, min(int(k), feats.shape[0]))
    if init == "official":  # a tensor start: the primitive's seed is not used
        start, seed = modality_mean_init(feats, modality_ids, k, num_modalities, generator), 0
    elif init == "k-means++":
        start, seed = "k-means++", int(generator.integers(2**31))
    else:
        raise ValueError(f"unknown MMC initialisation {init!r}; expected 'official' or 'k-means++'")
    if update == "mmc":
        def step(x: Tensor, labels: Tensor, num_clusters: int) -> tuple[Tensor, Tensor]:
            return modality_mean_centroids(x, labels, modality_ids, num_clusters, num_modalities)
    elif update == "kmeans":
        step = mean_update
    else:
        raise ValueError(f"unknown centroid update {update!r}; expected 'mmc' or 'kmeans'")
    # the primitive assigns once before its loop and updates once after it: iterations - 1 inner rounds
    # give the official T assignments and T updates
    result = kmeans(feats, k, iterations=max(iterations - 1, 0), init=start, update=step, drop_empty=True,
                    seed=seed)
    return result.labels, result.centroids
