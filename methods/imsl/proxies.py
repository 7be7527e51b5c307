"""Proxy bookkeeping for MIL: one proxy per (cluster, modality) pair that has members (docs/methods.md,
IMSL: MIL).

IMSL's MIL is camera-aware-proxy learning with camera := modality. A cluster whose members come from
two modalities has two proxies; one from three modalities has three. Proxies are numbered in
(cluster, modality) order, so the proxies of one cluster are contiguous.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class ProxyIndex:
    """The maps between samples, proxies, clusters and modalities of one epoch.

    Attributes:
        proxy_of_sample: [N] int64, the proxy of each training sample (its (cluster, modality) pair).
        proxy_cluster: [P] int64, the cluster of each proxy.
        proxy_modality: [P] int64, the modality index of each proxy.
        num_clusters: K; num_modalities: M.
    """

    proxy_of_sample: Tensor
    proxy_cluster: Tensor
    proxy_modality: Tensor
    num_clusters: int
    num_modalities: int

    @property
    def num_proxies(self) -> int:
        return int(self.proxy_cluster.shape[0])

    def proxies_of_cluster(self, cluster: int) -> Tensor:
        """[<= M] proxy ids of one cluster (one per modality it has members in)."""
        return torch.nonzero(self.proxy_cluster == cluster).squeeze(1)

    def proxies_of_modality(self, modality: int) -> Tensor:
        """[P_m] proxy ids of one modality."""
        return torch.nonzero(self.proxy_modality == modality).squeeze(1)

    def to(self, device: torch.device | str) -> ProxyIndex:
        return ProxyIndex(self.proxy_of_sample.to(device), self.proxy_cluster.to(device),
                          self.proxy_modality.to(device), self.num_clusters, self.num_modalities)


def build_proxies(labels: Tensor | np.ndarray, modality_ids: Tensor | np.ndarray,
                  num_modalities: int | None = None) -> ProxyIndex:
    """One proxy per (cluster, modality) pair present in ``labels`` [N] (all >= 0) x ``modality_ids`` [N]."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    modality_ids = torch.as_tensor(modality_ids, dtype=torch.int64, device=labels.device)
    if (labels < 0).any():
        raise ValueError("build_proxies needs a label for every sample (MMC leaves no outliers)")
    m = int(num_modalities if num_modalities is not None else int(modality_ids.max()) + 1)
    keys, proxy_of_sample = torch.unique(labels * m + modality_ids, sorted=True, return_inverse=True)
    return ProxyIndex(proxy_of_sample, keys // m, keys % m, int(labels.max()) + 1, m)


def group_means(feats: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """[G, D] L2-normalised mean feature of each group (``groups`` [N] in [0, G)); memory initialisation."""
    sums = feats.new_zeros(num_groups, feats.shape[1]).index_add_(0, groups, feats)
    return F.normalize(sums, dim=1)
