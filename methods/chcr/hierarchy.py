"""Cross-modality hierarchical clustering (docs/methods.md, CHCR: C, the hierarchy), as pure functions on
label arrays.

CHCR's abstract says the hierarchical step "promotes the clustering of inter-modality positive samples
into the same cluster"; a later paper says it sets "cross-modal constraints at the cluster centroid
level". Two readings fit; both are here:

* **cross-merge (C1, the default).** Level 1 is the joint clustering of the baseline. Level 2 looks at
  the level-1 clusters that hold one modality only and merges a visible-only cluster with an
  infrared-only cluster when their centroids are *mutual* nearest neighbours across the two modalities
  (after removing each modality's mean feature, the modality offset that keeps such clusters apart in
  the first place), in a few rounds over the still-unmatched clusters. A merge never joins two clusters
  that share a modality, so the partition *within* each modality is exactly the level-1 one: the
  hierarchy only adds cross-modality positives, it cannot undo what the density clustering separated.
* **modality-centred (C2).** Subtract each modality's mean feature and re-normalise *before* the joint
  clustering, so that the density clustering itself sees no modality offset (:func:`reidkit.cluster.centre_by_modality`).

Which features the cross-merge compares is an option (``merge_features``). ``image`` (the default, the
paper's reading) uses the image features that are being clustered. ``masks`` is a reidkit extension, not
in the paper: the centroids come from the same images' shape masks through the same network. A mask has no
colour or temperature, so it carries no modality; on the synthetic data the mask centroids pair visible
and infrared clusters of one person far more often than the image centroids (benchmarks/chcr.md,
"Matching clusters by shape"). It needs a mask for every training image (``data.mask_root`` on real data).

Why C1 is the default: it is literally hierarchical (clusters of clusters), it acts at the centroid level
as the citing sentence says, and it is conservative (one-to-one, mutual, within-modality structure
untouched), so a wrong merge costs one pair of clusters, where a wrong eps in C2 can chain many
identities. C2 is kept as an option for the ablation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from reidkit.cluster import centre_by_modality, cluster_centroids, match_rounds, relabel


def modality_presence(labels: np.ndarray, modality_ids: np.ndarray, num_modalities: int) -> np.ndarray:
    """[K, M] bool: which modalities each cluster 0..K-1 holds (outliers ignored)."""
    labels, modality_ids = np.asarray(labels), np.asarray(modality_ids)
    keep = labels >= 0
    k = int(labels.max()) + 1 if keep.any() else 0
    present = np.zeros((k, num_modalities), dtype=bool)
    present[labels[keep], modality_ids[keep]] = True
    return present


def mixed_share(labels: np.ndarray, modality_ids: np.ndarray, num_modalities: int) -> float:
    """Share of clusters that hold more than one modality (0 when there is no cluster)."""
    present = modality_presence(labels, modality_ids, num_modalities)
    present = present[present.any(1)]
    return float(np.mean(present.sum(1) > 1)) if len(present) else 0.0


@dataclass
class MergeResult:
    """Output of :func:`cross_modality_merge`.

    Attributes:
        labels: [N] int64 merged labels, consecutive, -1 for outliers.
        pairs: merged (visible-only cluster, other-modality-only cluster, cosine) in level-1 label ids.
        single_modality: level-1 clusters that held one modality only (candidates for merging).
    """

    labels: np.ndarray
    pairs: list[tuple[int, int, float]]
    single_modality: int


def cross_modality_merge(labels: np.ndarray, features: Tensor, modality_ids: np.ndarray, *, first: int = 0,
                         second: int = 1, threshold: float = 0.0, rounds: int = 1,
                         centre: bool = True) -> MergeResult:
    """Level 2 of the hierarchy (reading C1): merge single-modality clusters across two modalities.

    Args:
        labels: [N] level-1 labels (-1 = outlier), any non-negative ids.
        features: [N, D] L2-normalised features (rows follow ``labels``).
        modality_ids: [N] modality index of each sample; ``first`` and ``second`` are the two modalities
            to match (visible and infrared).
        threshold: least cosine similarity of a merged pair's centroids.
        rounds: each round pairs mutual nearest centroids among the clusters not yet matched.
        centre: compare centroids of modality-centred features (:func:`reidkit.cluster.centre_by_modality`).

    Only a cluster whose members are all of ``first`` can merge, and only with a cluster whose members
    are all of ``second``; each cluster merges at most once. So two samples of the same modality share a
    merged label iff they shared a level-1 label.
    """
    labels = relabel(labels)
    modality_ids = np.asarray(modality_ids)
    num_modalities = int(max(modality_ids.max(initial=0), first, second)) + 1
    present = modality_presence(labels, modality_ids, num_modalities)
    only = present.sum(1) == 1
    first_only = np.flatnonzero(only & present[:, first])
    second_only = np.flatnonzero(only & present[:, second])
    if len(first_only) == 0 or len(second_only) == 0:
        return MergeResult(labels, [], int(only.sum()))
    feats = centre_by_modality(features, modality_ids) if centre else features
    centroids = cluster_centroids(feats, labels, len(present))
    sim = centroids[torch.as_tensor(first_only, device=feats.device)] @ \
        centroids[torch.as_tensor(second_only, device=feats.device)].T
    target = np.arange(len(present))
    pairs = []
    for r, c, s in match_rounds(sim, threshold=threshold, rounds=rounds):
        a, b = int(first_only[r]), int(second_only[c])
        target[b] = a
        pairs.append((a, b, s))
    merged = np.where(labels >= 0, target[np.maximum(labels, 0)], -1)
    return MergeResult(relabel(merged), pairs, int(only.sum()))
