"""MIL, modality-aware invariant learning (docs/methods.md, IMSL: MIL): offline and online proxy
association losses.

Both losses are softmax cross-entropies restricted to a set of positive proxies plus the hardest
negatives, with a uniform target over the positives:

    L(i) = -(1/|A_i|) sum_{a in A_i} log( exp(s_ia / tau) / sum_{j in A_i u N_i} exp(s_ij / tau) ).

* **offline**: A_i = every proxy of the sample's MMC cluster (one per modality present); N_i = the
  ``hard_negatives`` other proxies most similar to f_i.
* **online**: rank every proxy by r_ij = (1-beta) <p_q(i), p_j> + beta <f_i, p_j> (detached; q(i) the
  sample's own proxy, beta = 0 officially); A_i = the highest-ranked proxy of every modality, of which the
  best ``positives`` are kept (with posK = M: "the nearest proxy in every modality", the sample's own
  proxy among them); N_i = the ``hard_negatives`` highest-ranked proxies outside A_i. The positives may
  belong to other clusters: this is the feedback that crosses MMC's cluster boundaries.

These are pure functions of a similarity matrix s = f @ P^T [B, P]: the memory that produces s (and
updates P in backward) is ``reidkit.models.memory.ProxyMemory``, called once per step so that both losses
share one similarity matrix and the memory moves once. They return one loss per sample so that MMRE can
weight them.
"""
from __future__ import annotations

import torch
from torch import Tensor

from reidkit.models.memory import hardest_negatives, selected_infonce


def offline_association_loss(sims: Tensor, clusters: Tensor, proxy_cluster: Tensor, *, temperature: float,
                             hard_negatives: int) -> Tensor:
    """[B] offline loss. sims [B, P] cosine similarities to the proxies; clusters [B] MMC labels."""
    positives = proxy_cluster.unsqueeze(0) == clusters.unsqueeze(1)
    negatives = hardest_negatives(sims.detach(), positives, hard_negatives)
    return selected_infonce(sims / temperature, positives, negatives)


def online_ranking(sims: Tensor, memory: Tensor, own_proxies: Tensor, beta: float = 0.0) -> Tensor:
    """[B, P] detached r = (1-beta) <p_own, p> + beta <f, p>; memory [P, D], own_proxies [B]."""
    memory = memory.detach()
    proxy_sims = memory[own_proxies] @ memory.T
    return ((1.0 - beta) * proxy_sims + beta * sims.detach()) if beta else proxy_sims


def online_positives(ranking: Tensor, proxy_modality: Tensor, num_modalities: int, k: int) -> Tensor:
    """[B, P] bool: the top-ranked proxy of every modality, then the best ``k`` of those candidates."""
    rows = torch.arange(ranking.shape[0], device=ranking.device)
    best_values, best_index = [], []
    for m in range(num_modalities):
        in_m = proxy_modality == m
        if not bool(in_m.any()):
            continue
        values, index = ranking.masked_fill(~in_m.unsqueeze(0), float("-inf")).max(dim=1)
        best_values.append(values)
        best_index.append(index)
    values = torch.stack(best_values, dim=1)  # [B, M_present]
    index = torch.stack(best_index, dim=1)
    keep = values.topk(min(max(int(k), 1), values.shape[1]), dim=1).indices
    chosen = index.gather(1, keep)
    positives = torch.zeros_like(ranking, dtype=torch.bool)
    positives[rows.unsqueeze(1).expand_as(chosen), chosen] = True
    return positives


def online_association_loss(sims: Tensor, ranking: Tensor, proxy_modality: Tensor, *, num_modalities: int,
                            temperature: float, hard_negatives: int, positives: int) -> Tensor:
    """[B] online loss: positives = nearest proxy per modality by ``ranking``; negatives = top-ranked others."""
    pos = online_positives(ranking, proxy_modality, num_modalities, positives)
    neg = hardest_negatives(ranking, pos, hard_negatives)
    return selected_infonce(sims / temperature, pos, neg)
