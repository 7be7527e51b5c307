"""Stand-in momentum memory until ``reidkit.models.memory`` lands (then this module becomes an import).

``similarities(feats, bank, targets, momentum)`` returns feats @ bank^T and, in backward, updates each
target row in batch order: bank[t] <- L2norm(momentum * bank[t] + (1 - momentum) * f) (momentum = weight
of the old value, as in the zqpang code).
"""
from __future__ import annotations

import torch
from torch import Tensor


class _MemorySimilarity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats: Tensor, targets: Tensor, bank: Tensor, momentum: float) -> Tensor:
        ctx.bank, ctx.momentum = bank, momentum
        ctx.save_for_backward(feats, targets)
        return feats @ bank.T

    @staticmethod
    def backward(ctx, grad: Tensor):
        feats, targets = ctx.saved_tensors
        bank = ctx.bank
        grad_feats = grad @ bank.to(grad.dtype) if ctx.needs_input_grad[0] else None
        with torch.no_grad():
            for f, t in zip(feats.detach().to(bank.dtype), targets.tolist()):
                row = ctx.momentum * bank[t] + (1.0 - ctx.momentum) * f
                bank[t] = row / row.norm().clamp(min=1e-12)
        return grad_feats, None, None, None


def similarities(feats: Tensor, bank: Tensor, targets: Tensor, momentum: float) -> Tensor:
    """[B, P] feats [B, D] @ bank [P, D]^T; backward updates ``bank`` rows ``targets`` [B] in place."""
    return _MemorySimilarity.apply(feats, targets, bank, momentum)
