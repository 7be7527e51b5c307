"""BN-neck: the BatchNorm1d between the pooled feature and the losses (Luo et al.'s "bag of tricks").

The bias (shift) is frozen at zero so that the normalised feature stays centred for cosine similarity; the
weight (scale) starts at one and is learned. IMSL's ``feat_bn`` and AGW's bottleneck are this layer.
"""
from __future__ import annotations

from torch import Tensor, nn


class BNNeck(nn.Module):
    """[B, D] -> [B, D] batch-normalised feature (not L2-normalised); bias frozen at 0, weight 1 at init."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x)


def build_neck(dim: int, enabled: bool = True) -> nn.Module:
    """A :class:`BNNeck` over ``dim`` features, or an identity when ``enabled`` is false."""
    return BNNeck(dim) if enabled else nn.Identity()
