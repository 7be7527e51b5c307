"""The joint clustering of CHCR's baseline (METHODS.md §4.3 B): one k-reciprocal Jaccard + DBSCAN over
the features of every modality together, giving one label space.

Built on :mod:`reidkit.cluster`; this module only adds what CHCR needs around it: neighbourhood sizes
capped for small sets, and an eps fallback for an epoch in which DBSCAN finds no cluster at all.
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
    """(k1, k2) capped for a set of ``n`` samples (k1 < n, k2 <= k1); the configured values otherwise."""
    k1 = max(1, min(k1, n - 1))
    return k1, max(1, min(k2, k1))


def joint_cluster(features: Tensor, *, eps: float, min_samples: int, k1: int, k2: int,
                  eps_step: float = 0.0, eps_max: float = 0.9) -> JointClustering:
    """Jaccard + DBSCAN over ``features`` [N, D] (L2-normalised, every modality together).

    When DBSCAN labels every sample an outlier (an untrained model, or a set smaller than the
    neighbourhoods the radius was chosen for), ``eps`` is raised by ``eps_step`` until some cluster
    appears or ``eps_max`` is passed. On a trained model at full scale this never fires; the radius used
    is logged every epoch (``info["eps_used"]``), so a fallback is visible.
    """
    n = features.shape[0]
    if n < 2:
        return JointClustering(np.full(n, -1, dtype=np.int64), eps)
    k1, k2 = neighbourhood(n, k1, k2)
    dist = jaccard_distance(features, k1=k1, k2=k2)
    radius = eps
    labels = np.asarray(dbscan(dist, eps=radius, min_samples=min_samples), dtype=np.int64)
    while not (labels >= 0).any() and eps_step > 0 and radius + eps_step <= eps_max + 1e-9:
        radius = round(radius + eps_step, 6)
        labels = np.asarray(dbscan(dist, eps=radius, min_samples=min_samples), dtype=np.int64)
    if radius != eps:
        log.info("DBSCAN found no cluster at eps=%.3f; used eps=%.3f", eps, radius)
    return JointClustering(labels, radius)
