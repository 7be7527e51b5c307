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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


# ------------------------------------------------------------------------------------------------------
# the built-in fallback shape map
# ------------------------------------------------------------------------------------------------------
def silhouette(images: Tensor, *, border: int | None = None, row_smoothing: int = 5,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """A deterministic silhouette estimate from normalised images, for datasets without masks.

    [B, 3, H, W] normalised images -> [B, 3, H, W] a binary person/background map, normalised like a mask
    image (white person on black, ImageNet mean/std), so it can replace ``ModalBatch.masks``.

    Why this estimate: re-ID crops are centred on the person, so the left and right image borders are
    mostly background, and backgrounds change mostly with height (wall, floor, horizon). The background of
    each row is the per-channel median of its ``border`` leftmost and rightmost pixels (default W / 10),
    smoothed over ``row_smoothing`` rows; the foreground is where a 5x5-smoothed colour distance to it
    exceeds an Otsu threshold chosen per image; a 3x3 closing fills pinholes. It needs no model and no
    data, works on any modality (for one-channel infrared the distance is an intensity difference), and is
    a pure function of the pixels. It is a *silhouette*, not a part map: it carries the outline that SMR's
    "shape" means, without parts. Its IoU with the synthetic part masks is in benchmarks/imsl.md; why the
    background is estimated per row rather than per image: docs/methods.md, IMSL: SMR.
    """
    b, _, h, w = images.shape
    x = images.float()
    border = max(2, round(w / 10)) if border is None else int(border)
    sides = torch.cat([x[..., :border], x[..., w - border:]], dim=3)  # [B, C, H, 2 * border]
    background = sides.median(dim=3).values  # [B, C, H]: one background colour per row
    if row_smoothing > 1:
        background = F.avg_pool1d(background, row_smoothing, stride=1, padding=row_smoothing // 2,
                                  count_include_pad=False)[..., :h]
    dist = (x - background.unsqueeze(-1)).norm(dim=1, keepdim=True)
    dist = F.avg_pool2d(dist, 5, stride=1, padding=2, count_include_pad=False)
    fg = (dist > otsu_threshold(dist).view(b, 1, 1, 1)).float()
    fg = -F.max_pool2d(-F.max_pool2d(fg, 3, stride=1, padding=1), 3, stride=1, padding=1)  # closing
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((fg.expand(b, 3, h, w) - m) / s).to(images.dtype)


def otsu_threshold(values: Tensor, bins: int = 64) -> Tensor:
    """[B] Otsu threshold of each image's values ([B, ...]): maximises the between-class variance."""
    flat = values.flatten(1)
    low, high = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    scaled = ((flat - low) / (high - low).clamp(min=1e-12) * (bins - 1)).round().long()
    hist = torch.zeros(flat.shape[0], bins, device=flat.device).scatter_add_(1, scaled, torch.ones_like(flat))
    p = hist / hist.sum(dim=1, keepdim=True)
    centres = torch.arange(bins, device=flat.device, dtype=flat.dtype)
    w0 = p.cumsum(dim=1)
    mu = (p * centres).cumsum(dim=1)
    between = (mu[:, -1:] * w0 - mu) ** 2 / (w0 * (1 - w0)).clamp(min=1e-12)
    best = between.argmax(dim=1).to(flat.dtype)  # class 0 = bins 0..best
    return low.squeeze(1) + (best + 0.5) / (bins - 1) * (high - low).squeeze(1)
