"""The joint clustering of CHCR's baseline (docs/methods.md, CHCR: B, the joint clustering): one
k-reciprocal Jaccard + DBSCAN over the features of every modality together, giving one label space.

Built on :mod:`reidkit.cluster`; this module only adds what CHCR needs around it: neighbourhood sizes
capped for toy-sized sets, and an eps fallback for an epoch in which DBSCAN finds no cluster at all.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from reidkit.cluster import dbscan, jaccard_distance

log = logging.getLogger(__name__)


@dataclass
class JointClustering:
    """Labels of one joint clustering and how they were obtained.

    Attributes:
        labels: [N] int64, -1 for outliers, consecutive ids otherwise.
        eps: the DBSCAN radius finally used (above the configured one only after a fallback).
    """

    labels: np.ndarray
    eps: float


def neighbourhood(n: int, k1: int, k2: int) -> tuple[int, int]:
    """(k1, k2) for a set of ``n`` samples: k1 at most a quarter of the set, k2 at most k1.

    The cap only bites below 4 x k1 samples (120 at the default k1 = 30), i.e. on toy sets such as the
    contract's 48-image dataset, where k1 = 30 reciprocal neighbours would span most of the set and every
    Jaccard distance would be small (one cluster, a zero InfoNCE loss). Real and synthetic training sets
    are far larger, so the configured values are used unchanged there.
    """
    k1 = max(1, min(k1, n // 4))
    return k1, max(1, min(k2, k1))


def joint_cluster(features: Tensor, *, eps: float, min_samples: int, k1: int, k2: int,
                  eps_step: float = 0.0, eps_max: float = 0.9) -> JointClustering:
    """Jaccard + DBSCAN over ``features`` [N, D] (L2-normalised, every modality together).

    Fallback for a degenerate result, which gives no contrastive signal at all: when DBSCAN labels every
    sample an outlier, ``eps`` is raised by ``eps_step`` (up to ``eps_max``); when it puts every labelled
    sample into one cluster, ``eps`` is lowered by ``eps_step`` (down to ``eps_step``). Both happen with an
    untrained model on toy data (the contract's 48 images); a trained model at full scale does not trigger
    them. The radius used is logged every epoch (``info["eps_used"]``), so a fallback is visible.
    """
    n = features.shape[0]
    if n < 2:
        return JointClustering(np.full(n, -1, dtype=np.int64), eps)
    k1, k2 = neighbourhood(n, k1, k2)
    dist = jaccard_distance(features, k1=k1, k2=k2)

    def run(radius: float) -> tuple[np.ndarray, int]:
        labels = np.asarray(dbscan(dist, eps=radius, min_samples=min_samples), dtype=np.int64)
        return labels, len(np.unique(labels[labels >= 0]))

    radius = eps
    labels, clusters = run(radius)
    direction = 1 if clusters == 0 else -1
    while clusters < 2 and eps_step > 0:
        nxt = round(radius + direction * eps_step, 6)
        if not eps_step - 1e-9 <= nxt <= eps_max + 1e-9:
            break
        radius = nxt
        labels, clusters = run(radius)
        if direction < 0 and clusters == 0:  # lowered too far: no cluster is worse than one
            radius = round(radius + eps_step, 6)
            labels, clusters = run(radius)
            break
    if radius != eps:
        log.info("DBSCAN at eps=%.3f gave a degenerate clustering; used eps=%.3f (%d clusters)",
                 eps, radius, clusters)
    return JointClustering(labels, radius)
