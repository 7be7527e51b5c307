"""The built-in silhouette: a person/background map estimated from a re-ID crop itself, with no model.

Used where a dataset has no shape masks: IMSL's SMR and the shape extensions (``shape_source``) and
``reidkit data masks --source silhouette``. One implementation for both, in core so that the data side
does not import a method plugin.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from reidkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD


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
