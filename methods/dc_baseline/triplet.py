"""Triplet losses over a batch with identities and modalities: AGW's, and the intra-modality branches'
(docs/methods.md, dc-baseline: the losses).

Pairs are chosen by *scope*, from each sample's identity label and modality ("group"):

* ``"all"``: positives are the other samples of the anchor's identity, negatives every other identity,
  in any modality. On a cross-modality P x K batch this is AGW's triplet: the hardest positive is
  usually in the other modality.
* ``"cross"``: positives and negatives only from modalities other than the anchor's.
* ``"intra"``: positives and negatives only from the anchor's own modality (the intra-modality
  enhancing branches).

Two losses over those pairs:

* :func:`hard_triplet`: batch-hard, ``relu(d(a, p_hardest) - d(a, n_hardest) + margin)``.
* :func:`weighted_regularized_triplet`: AGW's margin-free weighted-regularisation triplet: the positive
  and negative distances are softmax-weighted averages (far positives and close negatives weigh most),
  and the loss is ``softplus(d_pos - d_neg)``.

Anchors with no positive or no negative in their scope are skipped.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SCOPES = ("all", "cross", "intra")
KINDS = ("weighted", "hard")


def pairwise_euclidean(x: Tensor, y: Tensor) -> Tensor:
    """[N, D] x [M, D] -> [N, M] Euclidean distances (the square root is kept differentiable at 0)."""
    d2 = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * x @ y.T
    return d2.clamp(min=1e-12).sqrt()


def pair_masks(labels: Tensor, groups: Tensor, scope: str) -> tuple[Tensor, Tensor]:
    """Positive and negative pair masks of a batch.

    Args:
        labels: [N] identity labels. groups: [N] modality index of each sample.
        scope: ``"all"``, ``"cross"`` or ``"intra"`` (module docstring).
    Returns:
        ``(pos, neg)``, each [N, N] bool; ``pos`` never contains the diagonal.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    same_id = labels.unsqueeze(0) == labels.unsqueeze(1)
    same_group = groups.unsqueeze(0) == groups.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same_id & ~eye, ~same_id
    if scope == "cross":
        pos, neg = pos & ~same_group, neg & ~same_group
    elif scope == "intra":
        pos, neg = pos & same_group, neg & same_group
    return pos, neg


def hard_triplet(dist: Tensor, pos: Tensor, neg: Tensor, margin: float = 0.3) -> Tensor:
    """Batch-hard triplet loss, mean over anchors (rows) having a positive and a negative.

    Args:
        dist: [N, N] distances. pos, neg: [N, N] bool masks (:func:`pair_masks`).
    Returns:
        a scalar; 0 (in the graph of ``dist``) when no anchor is usable.
    """
    rows = pos.any(1) & neg.any(1)
    if not rows.any():
        return dist.sum() * 0.0
    d, p, n = dist[rows], pos[rows], neg[rows]
    hardest_pos = d.masked_fill(~p, float("-inf")).amax(1)
    hardest_neg = d.masked_fill(~n, float("inf")).amin(1)
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def weighted_regularized_triplet(dist: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """AGW's weighted-regularisation triplet (margin-free), mean over usable anchors.

    Per anchor: ``d_pos = sum_p softmax(d_ap) d_ap`` over its positives, ``d_neg = sum_n softmax(-d_an) d_an``
    over its negatives, loss ``softplus(d_pos - d_neg)`` (= soft-margin loss with target 1).

    Args and returns as :func:`hard_triplet`.
    """
    rows = pos.any(1) & neg.any(1)
    if not rows.any():
        return dist.sum() * 0.0
    d, p, n = dist[rows], pos[rows], neg[rows]
    w_pos = torch.softmax(d.masked_fill(~p, float("-inf")), dim=1)
    w_neg = torch.softmax((-d).masked_fill(~n, float("-inf")), dim=1)
    d_pos = (w_pos * d.masked_fill(~p, 0.0)).sum(1)
    d_neg = (w_neg * d.masked_fill(~n, 0.0)).sum(1)
    return F.softplus(d_pos - d_neg).mean()


def triplet_loss(feats: Tensor, labels: Tensor, groups: Tensor, *, kind: str = "weighted", scope: str = "all",
                 margin: float = 0.3) -> Tensor:
    """A triplet loss of ``kind`` (``"weighted"`` or ``"hard"``) over the pairs of ``scope``.

    Args:
        feats: [N, D] features (AGW: the pooled feature before the BN-neck).
        labels: [N] identity labels. groups: [N] modality index of each sample.
        margin: used by ``"hard"`` only.
    Returns:
        a scalar loss.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    pos, neg = pair_masks(labels, groups, scope)
    dist = pairwise_euclidean(feats, feats)
    if kind == "hard":
        return hard_triplet(dist, pos, neg, margin)
    return weighted_regularized_triplet(dist, pos, neg)


__all__ = [
    "KINDS",
    "SCOPES",
    "hard_triplet",
    "pair_masks",
    "pairwise_euclidean",
    "triplet_loss",
    "weighted_regularized_triplet",
]
