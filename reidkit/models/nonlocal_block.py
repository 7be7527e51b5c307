"""The non-local block of AGW (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook",
TPAMI 2021), the dot-product form of Wang et al.'s non-local networks (CVPR 2018).

For a feature map x [B, C, H, W] with N = H W positions::

    theta, phi, g = 1x1 convolutions of x to C' channels          (each [B, C', N])
    y = (theta^T phi / N) g^T                                     ([B, N, C'], no softmax)
    z = x + BN(W y)                                               (W: a 1x1 convolution back to C channels)

The BatchNorm after W starts with weight and bias 0, so a new block is the identity and an ImageNet network
with blocks inserted computes what it computed without them (AGW's initialisation; the convolutions keep
PyTorch's default initialisation, as in AGW's code).

C' (``inter_channels``) is 1 by default: AGW's released code (github.com/mangye16/ReID-Survey,
``modeling/layer/non_local.py``, also used by the cross-modality AGW baseline and ADCA) computes it as
``reduc_ratio // reduc_ratio``, which is 1 whatever the ratio, and its published numbers come from that
code. ``inter_channels=C // 2`` gives Wang et al.'s bottleneck.

Without a softmax the product is associative, so ``theta^T (phi g^T) / N`` is computed instead: the same
numbers (up to rounding) in O(N C'^2) instead of O(N^2 C') time and memory.
"""
from __future__ import annotations

from torch import Tensor, nn


class NonLocalBlock(nn.Module):
    """[B, C, H, W] -> [B, C, H, W]: ``x + BN(W(non-local mean of g(x)))``, the identity at initialisation."""

    def __init__(self, channels: int, inter_channels: int = 1) -> None:
        super().__init__()
        if channels < 1 or inter_channels < 1:
            raise ValueError(f"need channels >= 1 and inter_channels >= 1, got {channels}, {inter_channels}")
        self.channels = int(channels)
        self.inter_channels = int(inter_channels)
        self.g = nn.Conv2d(channels, inter_channels, kernel_size=1)
        self.theta = nn.Conv2d(channels, inter_channels, kernel_size=1)
        self.phi = nn.Conv2d(channels, inter_channels, kernel_size=1)
        self.W = nn.Sequential(nn.Conv2d(inter_channels, channels, kernel_size=1), nn.BatchNorm2d(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """AGW's initialisation: default convolutions, the output BatchNorm at weight 0 and bias 0."""
        for conv in (self.g, self.theta, self.phi, self.W[0]):
            conv.reset_parameters()
        bn = self.W[1]
        bn.reset_running_stats()
        nn.init.zeros_(bn.weight)
        nn.init.zeros_(bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        n = h * w
        theta = self.theta(x).flatten(2).transpose(1, 2)        # [B, N, C']
        phi = self.phi(x).flatten(2)                            # [B, C', N]
        g = self.g(x).flatten(2).transpose(1, 2)                # [B, N, C']
        y = theta @ ((phi @ g) / n)                             # [B, N, C'] = (theta phi / N) g
        y = y.transpose(1, 2).reshape(b, self.inter_channels, h, w)
        return x + self.W(y)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, inter_channels={self.inter_channels}"


__all__ = ["NonLocalBlock"]
