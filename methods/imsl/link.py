"""Clusters found within each modality and linked across modalities by shape (``modality_link: shape``).

A reidkit extension, not in the IMSL paper or code. MMC (:mod:`.mmc`) puts the modalities of a cluster
together through one shared centroid, so which visible images share a cluster with which infrared images
is decided by the image features alone. From a random start those carry almost no cross-modality identity,
so few of the visible-infrared pairs MMC puts together are one person (the share is measured in
benchmarks/imsl.md, "Linking the modalities by shape"). The shape maps (the dataset's masks, or the
silhouette estimate) carry no colour or temperature, hence no modality. With ``modality_link: shape``:

1. k-means within each modality on the image features, K clusters per modality (the same K as MMC;
   within a modality the mean-of-modality-means update is the plain mean, so ``clustering`` does not
   apply);
2. every other modality's clusters are linked one-to-one to the first modality's clusters (the anchor,
   visible on every built-in dataset) when their modality-centred shape centroids are mutual nearest
   neighbours, over ``link_rounds`` rounds (:func:`reidkit.cluster.match_rounds`, as CHCR's cross-merge);
3. a linked cluster takes its anchor's label; an unlinked one keeps its own, a single-modality cluster
   (MIL gives it one proxy).

So two images of the same modality share a label iff step 1 put them together, and two images of
different modalities share one iff their clusters were linked (directly, or through the same anchor when
there are three modalities).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from reidkit.cluster import centre_by_modality, cluster_centroids, kmeans, match_rounds, relabel


@dataclass(frozen=True)
class Link:
    """One link: cluster ``other`` (of modality ``modality``) joined to anchor cluster ``anchor``."""

    modality: int
    anchor: int
    other: int
    similarity: float


@dataclass(frozen=True)
class LinkResult:
    """Output of :func:`linked_clusters`.

    Attributes:
        labels: [N] int64 final labels, consecutive, every sample labelled.
        within: [N] int64 step-1 labels (per-modality clusters: modality 0's first, then modality 1's, ...).
        cluster_modality: [C] the modality of each step-1 cluster.
        links: the links, in step-1 cluster ids.
    """

    labels: Tensor
    within: np.ndarray
    cluster_modality: np.ndarray
    links: list[Link]


def linked_clusters(feats: Tensor, shape_feats: Tensor, modality_ids: Tensor | np.ndarray, k: int, *,
                    iterations: int = 5, rounds: int = 3, threshold: float = 0.0,
                    generator: np.random.Generator) -> LinkResult:
    """Label every sample: per-modality k-means on ``feats``, clusters linked by ``shape_feats``.

    Args:
        feats: [N, D] image features (clustered within each modality).
        shape_feats: [N, D'] shape features of the same samples (only their cluster centroids are compared).
        modality_ids: [N] int64 modality index; modality 0 is the anchor.
        k: clusters per modality (capped at the modality's sample count; empty clusters are dropped).
        iterations: k-means assignments per modality (as MMC's ``kmeans_iterations``).
        rounds, threshold: of the mutual-nearest matching (:func:`reidkit.cluster.match_rounds`).
        generator: seeds each modality's k-means++ initialisation (the engine's per-epoch generator).
    """
    feats = feats.float()
    modality_ids = torch.as_tensor(modality_ids, dtype=torch.int64, device=feats.device)
    num_modalities = int(modality_ids.max()) + 1
    labels = torch.empty(len(feats), dtype=torch.int64, device=feats.device)
    cluster_modality: list[int] = []
    for m in range(num_modalities):
        rows = torch.nonzero(modality_ids == m).squeeze(1)
        if len(rows) == 0:
            continue
        result = kmeans(feats[rows], min(int(k), len(rows)), iterations=max(iterations - 1, 0),
                        seed=int(generator.integers(2**31)), drop_empty=True)
        labels[rows] = result.labels.to(feats.device) + len(cluster_modality)
        cluster_modality += [m] * int(result.centroids.shape[0])
    owner = np.asarray(cluster_modality)
    centroids = cluster_centroids(centre_by_modality(shape_feats.float(), modality_ids), labels, len(owner))
    anchors = np.flatnonzero(owner == 0)
    target = np.arange(len(owner))
    links: list[Link] = []
    for m in range(1, num_modalities):
        others = np.flatnonzero(owner == m)
        if len(anchors) == 0 or len(others) == 0:
            continue
        sim = centroids[torch.as_tensor(anchors, device=centroids.device)] @ \
            centroids[torch.as_tensor(others, device=centroids.device)].T
        for r, c, s in match_rounds(sim, threshold=threshold, rounds=rounds):
            target[others[c]] = anchors[r]
            links.append(Link(m, int(anchors[r]), int(others[c]), s))
    within = labels.cpu().numpy()
    merged = torch.as_tensor(relabel(target[within]), dtype=torch.int64, device=feats.device)
    return LinkResult(merged, within, owner, links)
