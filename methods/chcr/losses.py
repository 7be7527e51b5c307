"""CHCR's modality contrastive loss: cross-modality constraints at the cluster-centroid level.

The form is a reconstruction of one sentence of a citing paper (docs/methods.md, CHCR: the modality
contrastive loss).

For a mixed cluster k (it holds both modalities) there are two centroids, c_k^V from its visible members
and c_k^R from its infrared ones. A visible sample i of cluster k is contrasted against the *infrared*
centroids of the mixed clusters,

    L_mc(i) = -log exp(<f_i, c_k^R> / tau) / sum_{j mixed} exp(<f_i, c_j^R> / tau),

and an infrared sample against the visible centroids. Samples of single-modality clusters have no
cross-modality positive and do not contribute.

The centroids live in one :class:`reidkit.models.memory.ProxyMemory` with 2K entries, visible first
(entry k) then infrared (entry K + k). Each sample's *own* entry (its cluster in its modality) is the
one updated with momentum in backward, while its loss is taken over the *other* modality's entries:
exactly a selected-positives softmax (:func:`reidkit.models.memory.selected_infonce`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from reidkit.models.memory import ProxyMemory, selected_infonce


def cross_modality_selection(labels: Tensor, side: int, mixed: Tensor) -> tuple[Tensor, Tensor]:
    """Positives and negatives [B, 2K] bool over the entries of the other modality.

    Args:
        labels: [B] cluster ids 0..K-1 of samples of one modality.
        side: 0 for visible samples, 1 for infrared ones (the half of the memory holding their own entries).
        mixed: [K] bool, the clusters with both modalities.
    """
    k = mixed.shape[0]
    columns = torch.arange(2 * k, device=labels.device)
    other = (columns >= k) if side == 0 else (columns < k)
    cluster_of = columns % k
    candidates = other & mixed[cluster_of]
    positives = candidates.unsqueeze(0) & (cluster_of.unsqueeze(0) == labels.unsqueeze(1))
    return positives, candidates.unsqueeze(0) & ~positives


def modality_contrastive_loss(memory: ProxyMemory, features: Tensor, labels: Tensor, side: int,
                              mixed: Tensor) -> Tensor:
    """Mean L_mc over the samples of mixed clusters; the samples' own entries move in backward.

    Args:
        memory: the 2K-entry centroid memory (its temperature is tau).
        features: [B, D] L2-normalised features of one modality; labels: [B] their cluster ids.
        side: 0 visible, 1 infrared. mixed: [K] bool.
    Returns:
        a scalar; 0 (still connected to ``features``) when no sample is in a mixed cluster.
    """
    k = mixed.shape[0]
    sims = memory.similarities(features, labels + side * k)
    positives, negatives = cross_modality_selection(labels, side, mixed)
    use = mixed[labels]
    if not bool(use.any()):
        return sims.sum() * 0.0
    return selected_infonce(sims[use] / memory.temperature, positives[use], negatives[use]).mean()


def centroid_entries(centroids: Tensor) -> tuple[Tensor, Tensor]:
    """[K, 2, D] (visible, infrared) centroids -> the memory's [2K, D] entries and [2K] cluster ids."""
    k = centroids.shape[0]
    entries = torch.cat([centroids[:, 0], centroids[:, 1]])
    return entries, torch.arange(k, device=centroids.device).repeat(2)
