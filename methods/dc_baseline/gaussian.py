"""Cross-modality distribution consistency under a Gaussian assumption: the modality-invariant module
(a reconstruction; docs/methods.md, dc-baseline: the losses).

The shared features of one identity in one modality are modelled as a Gaussian with diagonal covariance,
N(mu, diag(var)), estimated from that identity's samples in the batch. Two divergences between the
Gaussians of the same identity in two modalities are offered, both in closed form:

* :func:`symmetric_kl`: KL(a || b) + KL(b || a)
  = 1/2 sum_d [var_a/var_b + var_b/var_a + (mu_a - mu_b)^2 (1/var_a + 1/var_b) - 2].
  The log-determinants cancel. Sensitive to variance ratios, so noisy when variances come from 4 samples.
* :func:`wasserstein2`: the squared 2-Wasserstein distance between diagonal Gaussians
  = ||mu_a - mu_b||^2 + ||sigma_a - sigma_b||^2 with sigma = sqrt(var). Gentler: bounded by the feature
  scale, no division by a variance.

Both take variances that already include the small ``eps`` (:func:`gaussian_stats` adds it), so they stay
finite for a collapsed (zero-variance) dimension. Everything here is a pure function of tensors.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
from torch import Tensor

FORMS = ("kl", "w2")


def symmetric_kl(mu_a: Tensor, var_a: Tensor, mu_b: Tensor, var_b: Tensor, *,
                 reduction: str = "sum") -> Tensor:
    """Symmetric KL divergence KL(a||b) + KL(b||a) between diagonal Gaussians.

    Args:
        mu_a, var_a, mu_b, var_b: [..., D] means and (positive) variances.
        reduction: ``"sum"`` over the D dimensions (the divergence itself) or ``"mean"`` (divided by D,
            so that a loss weight does not depend on the feature size).
    Returns:
        [...] one divergence per leading index; 0 when the Gaussians are identical, symmetric in a, b.
    """
    diff2 = (mu_a - mu_b).pow(2)
    per_dim = 0.5 * (var_a / var_b + var_b / var_a + diff2 * (1.0 / var_a + 1.0 / var_b) - 2.0)
    return _reduce(per_dim, reduction)


def wasserstein2(mu_a: Tensor, var_a: Tensor, mu_b: Tensor, var_b: Tensor, *,
                 reduction: str = "sum") -> Tensor:
    """Squared 2-Wasserstein distance between diagonal Gaussians: ||mu_a - mu_b||^2 + ||sigma_a - sigma_b||^2.

    Args and returns as :func:`symmetric_kl`.
    """
    per_dim = (mu_a - mu_b).pow(2) + (var_a.sqrt() - var_b.sqrt()).pow(2)
    return _reduce(per_dim, reduction)


def _reduce(per_dim: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return per_dim.sum(dim=-1)
    if reduction == "mean":
        return per_dim.mean(dim=-1)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


DIVERGENCES = {"kl": symmetric_kl, "w2": wasserstein2}


def gaussian_stats(feats: Tensor, labels: Tensor, num_classes: int, *,
                   eps: float = 1e-5) -> tuple[Tensor, Tensor, Tensor]:
    """Class-conditional diagonal Gaussians of a set of features.

    Args:
        feats: [N, D] features.
        labels: [N] int64 class indices in ``0 .. num_classes-1``.
        num_classes: C.
        eps: added to every variance (keeps divergences finite for collapsed dimensions).
    Returns:
        ``(mean [C, D], var [C, D], count [C])``: per-class mean, unbiased variance (divisor n - 1) + eps,
        and sample count. Classes with fewer than 2 samples get variance ``eps`` (their statistics are
        not usable: callers mask them by ``count``).
    """
    if feats.dim() != 2 or labels.shape != feats.shape[:1]:
        raise ValueError(f"expected feats [N, D] and labels [N], got {tuple(feats.shape)} "
                         f"and {tuple(labels.shape)}")
    dim = feats.shape[1]
    count = torch.bincount(labels, minlength=num_classes)
    sums = feats.new_zeros(num_classes, dim).index_add_(0, labels, feats)
    mean = sums / count.clamp(min=1).unsqueeze(1).to(feats.dtype)
    centred = feats - mean[labels]
    squares = feats.new_zeros(num_classes, dim).index_add_(0, labels, centred.pow(2))
    var = squares / (count - 1).clamp(min=1).unsqueeze(1).to(feats.dtype)
    return mean, var + eps, count


def distribution_consistency(
    feats: Mapping[str, Tensor],
    labels: Mapping[str, Tensor],
    *,
    form: str = "w2",
    eps: float = 1e-5,
    min_samples: int = 2,
    reduction: str = "mean",
) -> tuple[Tensor, int]:
    """The class-conditional cross-modality distribution-consistency loss.

    For every pair of modalities (a, b) (one pair for 2 modalities, 3 for 3) and every identity with at
    least ``min_samples`` samples in both a and b, the divergence between the identity's Gaussian in a and
    in b; the loss is the mean over all such (identity, pair) terms.

    Args:
        feats: ``{modality: [N_m, D]}`` features (the shared BN-neck features in the method).
        labels: ``{modality: [N_m]}`` int64 identity labels (any non-negative integers).
        form: ``"kl"`` (:func:`symmetric_kl`) or ``"w2"`` (:func:`wasserstein2`).
        eps: added to variances.
        min_samples: samples needed per identity per modality (>= 2: a variance needs two).
        reduction: over feature dimensions, ``"sum"`` or ``"mean"``.
    Returns:
        ``(loss, terms)``: a scalar tensor and the number of (identity, pair) terms averaged. With no
        usable term (e.g. one instance per identity) the loss is an exact 0 that still belongs to the
        autograd graph of ``feats``.
    """
    if form not in DIVERGENCES:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if min_samples < 2:
        raise ValueError(f"min_samples must be >= 2 (a variance needs two samples), got {min_samples}")
    names = list(feats)
    zero = sum(f.sum() for f in feats.values()) * 0.0
    if len(names) < 2:
        return zero, 0
    present = [labels[m] for m in names if labels[m].numel()]
    if not present:
        return zero, 0
    num_classes = int(max(int(t.max()) for t in present)) + 1
    stats = {m: gaussian_stats(feats[m], labels[m], num_classes, eps=eps) for m in names}
    divergence = DIVERGENCES[form]
    total, terms = zero, 0
    for a, b in itertools.combinations(names, 2):
        mu_a, var_a, n_a = stats[a]
        mu_b, var_b, n_b = stats[b]
        usable = (n_a >= min_samples) & (n_b >= min_samples)
        if not usable.any():
            continue
        values = divergence(mu_a[usable], var_a[usable], mu_b[usable], var_b[usable], reduction=reduction)
        total = total + values.sum()
        terms += int(usable.sum())
    if terms == 0:
        return zero, 0
    return total / terms, terms


__all__ = ["FORMS", "distribution_consistency", "gaussian_stats", "symmetric_kl", "wasserstein2"]
