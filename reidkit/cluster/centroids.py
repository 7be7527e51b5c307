"""Cluster centroids: per cluster and per (cluster, modality), computed with one ``index_add_`` each.

Labels < 0 (outliers) are ignored. Empty clusters (or empty (cluster, modality) cells) get zero rows and
are flagged in the ``present`` masks, so the caller decides whether to drop them.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def _tensor(values, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(np.ascontiguousarray(values))
    return values.to(device=device, dtype=dtype) if dtype is not None else values.to(device=device)


def _prepare(features, labels, num_clusters: int | None) -> tuple[Tensor, Tensor, Tensor, int]:
    feats = _tensor(features, features.device if isinstance(features, Tensor) else torch.device("cpu"))
    if feats.dim() != 2:
        raise ValueError(f"features must be [N, D], got {tuple(feats.shape)}")
    feats = feats.detach()
    if not feats.is_floating_point():
        feats = feats.float()
    labels = _tensor(labels, feats.device, torch.int64)
    if labels.shape != (feats.shape[0],):
        raise ValueError(f"labels must have shape [{feats.shape[0]}], got {tuple(labels.shape)}")
    valid = labels >= 0
    k = int(labels.max()) + 1 if num_clusters is None and bool(valid.any()) else int(num_clusters or 0)
    if bool((labels >= k).any()):
        raise ValueError(f"labels reach {int(labels.max())} but num_clusters={k}")
    return feats, labels, valid, k


def cluster_centroids(features, labels, num_clusters: int | None = None, *,
                      normalize: bool = True) -> Tensor:
    """[K, D] mean feature of each cluster (zeros for empty ones), L2-normalised if ``normalize``.

    Args:
        features: [N, D] tensor or array (the result lives on its device; arrays give CPU tensors).
        labels: [N] integer cluster ids, -1 = outlier (ignored).
        num_clusters: K (default: max label + 1).
    """
    feats, labels, valid, k = _prepare(features, labels, num_clusters)
    sums = feats.new_zeros(k, feats.shape[1]).index_add_(0, labels[valid], feats[valid])
    counts = torch.bincount(labels[valid], minlength=k).to(feats.dtype)
    means = sums / counts.clamp(min=1).unsqueeze(1)
    return F.normalize(means, dim=1) if normalize else means


def modality_centroids(features, labels, modalities, num_clusters: int | None = None,
                       num_modalities: int | None = None, *, normalize: bool = True) -> tuple[Tensor, Tensor]:
    """Mean feature of every (cluster, modality) cell.

    Args:
        modalities: [N] integer modality index of each row (0..M-1).
    Returns:
        centroids [K, M, D] (zeros where a cell is empty; L2-normalised if ``normalize``) and
        present [K, M] bool.
    """
    feats, labels, valid, k = _prepare(features, labels, num_clusters)
    mods = _tensor(modalities, feats.device, torch.int64)
    if mods.shape != labels.shape:
        raise ValueError(f"modalities must have shape {tuple(labels.shape)}, got {tuple(mods.shape)}")
    m = int(num_modalities) if num_modalities is not None else (int(mods.max()) + 1 if mods.numel() else 0)
    if bool((mods < 0).any()) or bool((mods >= m).any()):
        raise ValueError(f"modality indices must be in [0, {m})")
    cell = labels[valid] * m + mods[valid]
    sums = feats.new_zeros(k * m, feats.shape[1]).index_add_(0, cell, feats[valid])
    counts = torch.bincount(cell, minlength=k * m)
    means = (sums / counts.clamp(min=1).to(feats.dtype).unsqueeze(1)).view(k, m, -1)
    if normalize:
        means = F.normalize(means, dim=2)
    return means, (counts > 0).view(k, m)
