"""Linking clusters across modalities by their centroids: modality centring and mutual nearest neighbours.

A cluster found within one modality (a visible-only or an infrared-only cluster) has a partner in another
modality only if the features say which one. The modality gap is, to first order, an offset shared by
every image of a modality, so centroids are compared after removing each modality's mean feature
(:func:`centre_by_modality`); a pair is linked when the two centroids are each other's nearest neighbour
(:func:`mutual_nearest_pairs`), in a few rounds over the clusters still unlinked (:func:`match_rounds`).
The links are one-to-one and conservative: a cluster without a mutual partner stays on its own.

Used by CHCR's cross-merge (``methods/chcr/hierarchy.py``) and IMSL's ``modality_link: shape``
(``methods/imsl/link.py``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def centre_by_modality(features: Tensor, modality_ids: np.ndarray | Tensor) -> Tensor:
    """[N, D] features minus their modality's mean feature, L2-normalised again.

    The modality gap is, to first order, an offset shared by every image of a modality; removing it makes
    cosine similarities comparable across modalities.
    """
    ids = torch.as_tensor(modality_ids, device=features.device)
    out = features.clone()
    for m in torch.unique(ids):
        rows = ids == m
        out[rows] = features[rows] - features[rows].mean(0, keepdim=True)
    return F.normalize(out, dim=1)


def mutual_nearest_pairs(similarity: Tensor, threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (row, col, sim) that are each other's nearest neighbour in ``similarity`` [R, C], sim >= threshold."""
    if similarity.numel() == 0:
        return []
    best_col = similarity.argmax(dim=1)
    best_row = similarity.argmax(dim=0)
    rows = torch.arange(similarity.shape[0], device=similarity.device)
    mutual = (best_row[best_col] == rows) & (similarity[rows, best_col] >= threshold)
    return [(int(r), int(best_col[r]), float(similarity[r, best_col[r]])) for r in rows[mutual].tolist()]


def match_rounds(similarity: Tensor, *, threshold: float = 0.0, rounds: int = 1) -> list[tuple[int, int, float]]:
    """One-to-one matches (row, col, sim) of ``similarity`` [R, C] by mutual nearest neighbours.

    Each round pairs the mutual nearest neighbours among the rows and columns not matched in an earlier
    round (with similarity >= ``threshold``); it stops early when a round finds none. Every row and every
    column appears in at most one match.
    """
    free_rows = np.ones(similarity.shape[0], dtype=bool)
    free_cols = np.ones(similarity.shape[1], dtype=bool)
    pairs: list[tuple[int, int, float]] = []
    for _ in range(rounds):
        r_idx, c_idx = np.flatnonzero(free_rows), np.flatnonzero(free_cols)
        if len(r_idx) == 0 or len(c_idx) == 0:
            break
        sub = similarity[torch.as_tensor(r_idx, device=similarity.device)][
            :, torch.as_tensor(c_idx, device=similarity.device)]
        found = mutual_nearest_pairs(sub, threshold)
        if not found:
            break
        for r, c, s in found:
            pairs.append((int(r_idx[r]), int(c_idx[c]), s))
            free_rows[r_idx[r]] = False
            free_cols[c_idx[c]] = False
    return pairs
