"""MMRE, multi-modality reliability estimation: per-sample loss weights normalised per modality.

MMRE is **not in the released code**; this is reidkit's reconstruction (docs/methods.md, IMSL: MMRE). The
abstract says MMRE "normalizes sample weights" against noisy pseudo-labels. Each sample gets a raw
reliability rho_i > 0, and its weight is

    w_i = rho_i / mean{ rho_j : m_j = m_i },

so **the weights of every modality average exactly 1** over the training set. Without the per-modality
normalisation, the modalities far from the centroids (NI/TI, infrared) would be down-weighted as a whole.
The weights multiply L_off, L_on and L_ce (and the MIL-off cluster loss); L_align stays unweighted.

Raw reliabilities (``mmre_reliability``):

* ``centroid-distance``: rho_i = exp(-d_i / sigma_m), d_i = ||f_i - c_{y_i}|| to the MMC centroid and
  sigma_m the mean d of the sample's modality (the default);
* ``margin``: rho_i = sigmoid((d2_i - d_i) / sigma_m), d2 the distance to the nearest *other* centroid and
  sigma_m the mean |margin| of the modality: confident assignments weigh more;
* ``mask-agreement``: rho_i = 1 when the sample's mask feature is nearest to its own cluster's mask
  centroid, else 0.5: the shape branch vouches for the image cluster (needs SMR).
"""
from __future__ import annotations

import torch
from torch import Tensor


def normalise_per_modality(raw: Tensor, modality_ids: Tensor, num_modalities: int) -> Tensor:
    """[N] weights ``raw / mean(raw over the sample's modality)``: each modality averages 1."""
    means = _per_modality_mean(raw, modality_ids.to(raw.device), num_modalities)
    return raw / means.clamp(min=torch.finfo(raw.dtype).tiny)


def _per_modality_mean(values: Tensor, modality_ids: Tensor, num_modalities: int) -> Tensor:
    sums = values.new_zeros(num_modalities).index_add_(0, modality_ids, values)
    counts = torch.bincount(modality_ids, minlength=num_modalities).to(values.dtype)
    return (sums / counts.clamp(min=1))[modality_ids]


def centroid_distance_reliability(feats: Tensor, labels: Tensor, centroids: Tensor, modality_ids: Tensor,
                                  num_modalities: int) -> Tensor:
    """[N] rho = exp(-d / sigma_m) with d the distance of each feature [N, D] to its centroid [K, D]."""
    d = (feats - centroids[labels]).norm(dim=1)
    sigma = _per_modality_mean(d, modality_ids, num_modalities).clamp(min=1e-6)
    return torch.exp(-d / sigma)


def margin_reliability(feats: Tensor, labels: Tensor, centroids: Tensor, modality_ids: Tensor,
                       num_modalities: int) -> Tensor:
    """[N] rho = sigmoid(margin / sigma_m), margin = (nearest other centroid) - (own centroid) distance."""
    dist = torch.cdist(feats, centroids)
    own = dist.gather(1, labels.unsqueeze(1)).squeeze(1)
    other = dist.scatter(1, labels.unsqueeze(1), float("inf")).min(dim=1).values if centroids.shape[0] > 1 \
        else own + 1.0
    margin = other - own
    sigma = _per_modality_mean(margin.abs(), modality_ids, num_modalities).clamp(min=1e-6)
    return torch.sigmoid(margin / sigma)


def mask_agreement_reliability(mask_feats: Tensor, labels: Tensor, mask_centroids: Tensor) -> Tensor:
    """[N] rho = 1 where the mask feature's nearest mask centroid is the image cluster, else 0.5."""
    agree = (mask_feats @ mask_centroids.T).argmax(dim=1) == labels
    return torch.where(agree, 1.0, 0.5).to(mask_feats.dtype)


def reliability_weights(kind: str, *, feats: Tensor, labels: Tensor, centroids: Tensor, modality_ids: Tensor,
                        num_modalities: int, mask_feats: Tensor | None = None,
                        mask_centroids: Tensor | None = None) -> Tensor:
    """[N] MMRE weights of the ``kind`` reliability, normalised to average 1 in every modality."""
    modality_ids = modality_ids.to(feats.device)
    labels = labels.to(feats.device)
    if kind == "centroid-distance":
        raw = centroid_distance_reliability(feats, labels, centroids, modality_ids, num_modalities)
    elif kind == "margin":
        raw = margin_reliability(feats, labels, centroids, modality_ids, num_modalities)
    elif kind == "mask-agreement":
        if mask_feats is None or mask_centroids is None:
            raise ValueError("mmre_reliability=mask-agreement needs the shape branch (smr: true)")
        raw = mask_agreement_reliability(mask_feats, labels, mask_centroids)
    else:
        raise ValueError(f"unknown reliability {kind!r}")
    return normalise_per_modality(raw.float(), modality_ids, num_modalities)
