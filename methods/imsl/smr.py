"""SMR, shape-based mutual reinforcement (docs/methods.md, IMSL: SMR): the shape branch and its two losses.

The shape input is a mask image of each training image (a human-parsing map in the official code; the
synthetic data ships part maps under ``masks/``). Masks go through the **same backbone** as the images;
their L2-normalised BN-neck feature g_i is classified against a mask-cluster memory C (one entry per MMC
cluster, momentum 0.2; ``reidkit.models.memory.ClusterMemory``) with a label-smoothed cross-entropy
(tau 0.05; target 0.9 on the own cluster + 0.1 / K everywhere, as the official ``HybridMemory(back=2)``). The image is
pulled toward its own mask by a projection head h = L2norm(BN'(W x + b)) on the pooled image feature x:

    L_SMR = L_ce + 0.25 * L_align,   L_align = -mean_i cos(h_i, stopgrad(g_i)).

When a dataset has no masks, :func:`silhouette` estimates a shape map from the image itself (see there).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch.nn.functional as F
from torch import Tensor, nn

# the built-in fallback shape map lives in core (the data side's ``reidkit data masks`` uses it too)
from reidkit.data.silhouette import IMAGENET_MEAN, IMAGENET_STD, otsu_threshold, silhouette

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ProjectionHead", "alignment_loss", "frozen_bn_stats",
           "otsu_threshold", "silhouette"]


class ProjectionHead(nn.Module):
    """IMSL's ``full_connect`` + ``full_bn``: Linear D->D (Kaiming init, bias 0), BatchNorm1d with a frozen
    zero bias, then L2 normalisation. [B, D] pooled feature -> [B, D] unit vectors. Used only by SMR."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_out")
        nn.init.zeros_(self.fc.bias)
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)

    def forward(self, pooled: Tensor) -> Tensor:
        return F.normalize(self.bn(self.fc(pooled)), dim=1)


def alignment_loss(projected: Tensor, mask_feats: Tensor) -> Tensor:
    """Scalar -mean cos(h_i, stopgrad(g_i)); the gradient reaches only the image path and the head."""
    return -F.cosine_similarity(projected, mask_feats.detach(), dim=1).mean()


@contextmanager
def frozen_bn_stats(module: nn.Module, frozen: bool = True) -> Iterator[None]:
    """Forward in train mode without updating BatchNorm running statistics (momentum 0 meanwhile).

    The batch statistics are still used to normalise (train-mode BatchNorm); only the running averages
    used at test time keep their values. With ``frozen`` false this is a no-op.
    """
    if not frozen:
        yield
        return
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, value in zip(norms, saved):
            m.momentum = value
