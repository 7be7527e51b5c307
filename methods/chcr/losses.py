"""CHCR's modality contrastive loss: cross-modality constraints at the cluster-centroid level (§4.3 C).

For a mixed cluster k (it holds both modalities) there are two centroids, c_k^V from its visible members
and c_k^R from its infrared ones. A visible sample i of cluster k is contrasted against the *infrared*
centroids of every mixed cluster,

    L_mc(i) = -log exp(<f_i, c_k^R> / tau) / sum_j exp(<f_i, c_j^R> / tau),

and an infrared sample against the visible centroids. Samples of single-modality clusters have no
cross-modality positive and do not contribute.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def modality_contrastive_loss(features: Tensor, targets: Tensor, other_centroids: Tensor, valid: Tensor,
                              temperature: float) -> Tensor:
    """Mean L_mc over the samples whose cluster has a centroid in the other modality.

    Args:
        features: [B, D] L2-normalised features of one modality.
        targets: [B] int64 cluster ids (0..K-1).
        other_centroids: [K, D] the other modality's centroid of each cluster (rows of clusters without
            members of that modality are ignored).
        valid: [K] bool, the clusters that have a centroid in the other modality (the mixed clusters).
        temperature: tau.
    Returns:
        a scalar; 0 (connected to ``features``, so that backward still works) when no sample qualifies.
    """
    use = valid[targets]
    if not bool(use.any()):
        return features.sum() * 0.0
    logits = features[use] @ other_centroids.T / temperature
    logits = logits.masked_fill(~valid.unsqueeze(0), float("-inf"))
    return F.cross_entropy(logits, targets[use])

