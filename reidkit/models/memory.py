"""Momentum memory banks whose entries are updated inside autograd's backward pass.

The ClusterContrast family keeps one L2-normalised vector per cluster (or per proxy) and, after each
batch, moves the entry of every sample's target towards the sample:

    m[t] <- normalise(momentum * m[t] + (1 - momentum) * f)        for each (f, t) in batch order

``momentum`` is the weight on the **old** value (0.2 in the zqpang code: a fast update; 0.1 in ADCA).
Samples sharing a target update it one after another, in batch order, exactly as the reference loops do
(here vectorised over targets: the k-th occurrences of all targets are applied together).

The update happens in the backward of :class:`MomentumSimilarity` (``f @ m.T`` forward), after the
gradient for ``f`` has been computed from the old entries. It writes through ``.data``, so it does not
bump the memory's autograd version counter: other terms of the same loss that read the memory can be
backpropagated after it without "modified by an inplace operation" errors (they then see the updated
entries, as in the reference code).

In a distributed run the backward gathers every rank's (features, targets) first, so all ranks apply the
same global batch and their memories stay identical.

Memories are per-epoch state, rebuilt by ``reset`` after each clustering; their tensors are registered as
non-persistent buffers, so checkpoints neither store them nor break when their size changes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidkit import distributed


class MomentumSimilarity(torch.autograd.Function):
    """``features @ memory.T`` [B, P]; backward returns ``grad @ memory`` and then applies
    :func:`momentum_update_` to ``memory`` with (features, targets)."""

    @staticmethod
    def forward(ctx, features: Tensor, targets: Tensor, memory: Tensor, momentum: float) -> Tensor:
        ctx.save_for_backward(features, targets)
        ctx.memory, ctx.momentum = memory, float(momentum)
        return features.to(memory.dtype) @ memory.T

    @staticmethod
    def backward(ctx, grad: Tensor):
        features, targets = ctx.saved_tensors
        memory = ctx.memory
        grad_features = None
        if ctx.needs_input_grad[0]:
            grad_features = (grad.to(memory.dtype) @ memory).to(features.dtype)
        features = features.detach()
        if distributed.is_distributed():  # every rank applies the whole global batch, in rank order
            features, targets = distributed.gather_rows(features), distributed.gather_rows(targets)
        momentum_update_(memory, features, targets, ctx.momentum)
        return grad_features, None, None, None


def memory_similarity(features: Tensor, targets: Tensor, memory: Tensor, momentum: float) -> Tensor:
    """[B, P] ``features`` [B, D] @ ``memory`` [P, D]^T; backward updates rows ``targets`` [B] of memory."""
    return MomentumSimilarity.apply(features, targets, memory, momentum)


@torch.no_grad()
def momentum_update_(memory: Tensor, features: Tensor, targets: Tensor, momentum: float) -> None:
    """In place, in batch order: ``m[t] <- normalise(momentum * m[t] + (1 - momentum) * f)``."""
    if targets.numel() == 0:
        return
    data = memory.data  # no version bump: see the module docstring
    targets = targets.to(device=data.device, dtype=torch.int64)
    feats = features.to(device=data.device, dtype=data.dtype)
    order = torch.argsort(targets, stable=True)
    sorted_t = targets[order]
    starts = torch.ones_like(sorted_t, dtype=torch.bool)
    starts[1:] = sorted_t[1:] != sorted_t[:-1]
    group_start = torch.cummax(torch.where(starts, torch.arange(len(order), device=data.device),
                                           torch.zeros_like(order)), 0).values
    occurrence = torch.empty_like(order)
    occurrence[order] = torch.arange(len(order), device=data.device) - group_start
    for k in range(int(occurrence.max()) + 1):
        pick = occurrence == k  # at most one sample per target
        t = targets[pick]
        rows = momentum * data[t] + (1.0 - momentum) * feats[pick]
        data[t] = rows / rows.norm(dim=1, keepdim=True).clamp(min=1e-12)


def selected_infonce(logits: Tensor, positives: Tensor, negatives: Tensor) -> Tensor:
    """[B] per-sample loss of a softmax restricted to ``positives | negatives`` ([B, P] bool), with a
    uniform target over the positives: ``-(1/|A|) sum_{a in A} log softmax_{A u N}(logits)_a``.
    Rows without positives give 0."""
    selected = positives | negatives
    log_prob = torch.log_softmax(logits.masked_fill(~selected, float("-inf")), dim=1)
    total = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -total / positives.sum(dim=1).clamp(min=1)


def hardest_negatives(scores: Tensor, exclude: Tensor, k: int) -> Tensor:
    """[B, P] bool: per row the ``k`` highest ``scores`` outside ``exclude`` (all of them if fewer)."""
    k = min(int(k), scores.shape[1])
    chosen = torch.zeros_like(exclude)
    if k <= 0:
        return chosen
    index = scores.masked_fill(exclude, float("-inf")).topk(k, dim=1).indices
    return chosen.scatter_(1, index, True) & ~exclude


def _reduce(losses: Tensor, weights: Tensor | None, reduction: str) -> Tensor:
    if weights is not None:
        losses = losses * weights.to(losses.dtype)
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class ClusterMemory(nn.Module):
    """One momentum-updated entry per cluster; InfoNCE of each sample against all entries.

    ``loss = mean_i w_i * CE(f_i @ M^T / temperature, y_i)`` (``w_i = 1`` without weights; MMRE-style
    weights that average 1 keep the scale), with optional label smoothing (IMSL's SMR uses 0.1).

    Args:
        num_features: D. num_entries: initial number of entries (``reset`` sets the real one).
        temperature: tau of the softmax (0.05 in ClusterContrast / ADCA / zqpang).
        momentum: weight on the old entry in the update.
    """

    def __init__(self, num_features: int, num_entries: int = 0, temperature: float = 0.05,
                 momentum: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.num_features, self.temperature, self.momentum = int(num_features), float(temperature), float(momentum)
        self.register_buffer("features", torch.zeros(num_entries, num_features), persistent=False)

    @property
    def num_entries(self) -> int:
        return int(self.features.shape[0])

    @torch.no_grad()
    def reset(self, centroids: Tensor) -> None:
        """Replace the entries by L2-normalised ``centroids`` [K, D] (K may differ from before)."""
        if centroids.dim() != 2 or centroids.shape[1] != self.num_features:
            raise ValueError(f"centroids must be [K, {self.num_features}], got {tuple(centroids.shape)}")
        self.features = F.normalize(centroids.detach().to(device=self.features.device, dtype=torch.float32),
                                    dim=1).contiguous()

    def similarities(self, features: Tensor, targets: Tensor) -> Tensor:
        """[B, K] cosine similarities to the entries; backward updates the entries ``targets``."""
        if self.num_entries == 0:
            raise RuntimeError("the memory is empty: call reset(centroids) after clustering")
        return memory_similarity(features, targets, self.features, self.momentum)

    def forward(self, features: Tensor, targets: Tensor, weights: Tensor | None = None, *,
                label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
        """InfoNCE of ``features`` [B, D] (L2-normalised) against all entries, ``targets`` [B] entry ids."""
        logits = self.similarities(features, targets) / self.temperature
        losses = F.cross_entropy(logits, targets.to(logits.device), reduction="none",
                                 label_smoothing=label_smoothing)
        return _reduce(losses, weights, reduction)


class ProxyMemory(ClusterMemory):
    """Momentum entries for proxies (e.g. one per (cluster, modality) pair), with losses restricted to
    selected positives and hard negatives (IMSL's MIL, docs/methods.md: tau = 0.10, 40 negatives).

    ``reset(centroids, proxy_cluster)`` also records the cluster of every proxy. ``forward`` defaults to
    the **offline association**: positives = every proxy of the sample's cluster, negatives = the
    ``hard_negatives`` other proxies most similar to the sample. Pass ``positives`` / ``negatives``
    ([B, P] bool) for other selections (e.g. the online association's cross-cluster positives).
    """

    def __init__(self, num_features: int, num_entries: int = 0, temperature: float = 0.10,
                 momentum: float = 0.2, hard_negatives: int = 40) -> None:
        super().__init__(num_features, num_entries, temperature, momentum)
        self.hard_negatives = int(hard_negatives)
        self.register_buffer("proxy_cluster", torch.zeros(num_entries, dtype=torch.int64), persistent=False)

    @torch.no_grad()
    def reset(self, centroids: Tensor, proxy_cluster: Tensor | None = None) -> None:
        """Entries from ``centroids`` [P, D]; ``proxy_cluster`` [P] the cluster of each proxy (default:
        every proxy its own cluster)."""
        super().reset(centroids)
        p = centroids.shape[0]
        clusters = torch.arange(p) if proxy_cluster is None else torch.as_tensor(proxy_cluster)
        if clusters.shape != (p,):
            raise ValueError(f"proxy_cluster must have shape [{p}], got {tuple(clusters.shape)}")
        self.proxy_cluster = clusters.to(device=self.features.device, dtype=torch.int64)

    def forward(self, features: Tensor, targets: Tensor, weights: Tensor | None = None, *,
                positives: Tensor | None = None, negatives: Tensor | None = None,
                hard_negatives: int | None = None, reduction: str = "mean") -> Tensor:
        """Selected-softmax loss of ``features`` [B, D]; ``targets`` [B] are the samples' own proxies
        (the entries updated in backward)."""
        sims = self.similarities(features, targets)
        targets = targets.to(sims.device)
        if positives is None:
            positives = self.proxy_cluster.unsqueeze(0) == self.proxy_cluster[targets].unsqueeze(1)
        if negatives is None:
            k = self.hard_negatives if hard_negatives is None else hard_negatives
            negatives = hardest_negatives(sims.detach(), positives, k)
        losses = selected_infonce(sims / self.temperature, positives, negatives)
        return _reduce(losses, weights, reduction)
