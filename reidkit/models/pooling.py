"""Global pooling of a feature map into one vector per image: GeM (fixed p) and average pooling.

GeM with p = 3 is what IMSL and AGW use (docs/methods.md, "Shared building blocks"); p is a fixed
hyper-parameter here, not a learned one, as in IMSL's official code.
"""
from __future__ import annotations

from torch import Tensor, nn


class GeMPooling(nn.Module):
    """Generalised-mean pooling: ``(mean_{h,w} max(x, eps)^p)^(1/p)``.

    [B, C, H, W] -> [B, C]. ``p = 1`` is average pooling of the clamped map; large ``p`` tends to max
    pooling. The clamp keeps the fractional power defined (ReLU outputs are >= 0, but exact zeros would
    give an infinite gradient).
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeM pooling needs p > 0, got {p}")
        self.p = float(p)
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, eps={self.eps}"


class AvgPooling(nn.Module):
    """Global average pooling, [B, C, H, W] -> [B, C]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3))


def build_pooling(name: str, *, p: float = 3.0) -> nn.Module:
    """``"gem"`` -> :class:`GeMPooling` with exponent ``p``; ``"avg"`` -> :class:`AvgPooling`."""
    if name == "gem":
        return GeMPooling(p)
    if name == "avg":
        return AvgPooling()
    raise ValueError(f"unknown pooling {name!r}; expected 'gem' or 'avg'")


__all__ = ["AvgPooling", "GeMPooling", "build_pooling"]
