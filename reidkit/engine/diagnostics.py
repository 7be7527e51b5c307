"""Pseudo-label diagnostics against the hidden training identities: logged, never fed back."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def cluster_counts(labels: np.ndarray) -> dict[str, float]:
    """Number of clusters and the share of samples left out (label -1)."""
    labels = np.asarray(labels)
    kept = labels[labels >= 0]
    return {"clusters": int(np.unique(kept).size), "outliers": float(np.mean(labels < 0)) if labels.size else 0.0}


def label_diagnostics(labels: np.ndarray, truth: np.ndarray, modality_ids: np.ndarray) -> dict[str, float]:
    """Agreement of pseudo-labels with identities, on the samples kept for training.

    Returns ``label_ari``, ``label_nmi``, ``label_purity`` (share of kept samples whose cluster's majority
    identity is theirs), ``mixed_cluster_share`` (share of clusters holding more than one modality) and
    ``cross_pair_precision``: of the pairs of samples from different modalities that share a pseudo-label,
    the share that show the same person (0 when no cluster holds two modalities). It is what cross-modality
    learning is taught: a clustering can have a high ARI and no correct cross-modality pair.
    """
    labels, truth, modality_ids = map(np.asarray, (labels, truth, modality_ids))
    keep = labels >= 0
    if keep.sum() < 2:
        return {"label_ari": 0.0, "label_nmi": 0.0, "label_purity": 0.0, "mixed_cluster_share": 0.0,
                "cross_pair_precision": 0.0}
    lab, tru, mod = labels[keep], truth[keep], modality_ids[keep]
    _, lab = np.unique(lab, return_inverse=True)
    _, tru = np.unique(tru, return_inverse=True)
    pair = lab.astype(np.int64) * (tru.max() + 1) + tru
    pair_ids, pair_counts = np.unique(pair, return_counts=True)
    majority = np.zeros(lab.max() + 1, dtype=np.int64)
    np.maximum.at(majority, pair_ids // (tru.max() + 1), pair_counts)
    mods = np.unique(lab.astype(np.int64) * (mod.max() + 1) + mod) // (mod.max() + 1)
    clusters_per = np.bincount(mods, minlength=lab.max() + 1)
    return {
        "label_ari": float(adjusted_rand_score(tru, lab)),
        "label_nmi": float(normalized_mutual_info_score(tru, lab)),
        "label_purity": float(majority.sum() / lab.size),
        "mixed_cluster_share": float(np.mean(clusters_per > 1)),
        "cross_pair_precision": _cross_pair_precision(lab.astype(np.int64), tru.astype(np.int64), mod),
    }


def _cross_modality_pairs(group: np.ndarray, modality: np.ndarray) -> int:
    """Number of unordered pairs of samples in the same group and in different modalities."""
    width = int(modality.max()) + 1
    cell, per_cell = np.unique(group * width + modality, return_counts=True)
    owner = cell // width
    per_group = np.bincount(owner, weights=per_cell)
    squares = np.bincount(owner, weights=per_cell.astype(np.float64) ** 2)
    return round(float((per_group ** 2 - squares).sum()) / 2)


def _cross_pair_precision(lab: np.ndarray, tru: np.ndarray, mod: np.ndarray) -> float:
    """Of the cross-modality pairs sharing a label in ``lab``, the share that share one in ``tru`` too."""
    mod = np.unique(mod, return_inverse=True)[1].astype(np.int64)
    total = _cross_modality_pairs(lab, mod)
    if total == 0:
        return 0.0
    same = _cross_modality_pairs(lab * (int(tru.max()) + 1) + tru, mod)
    return same / total
