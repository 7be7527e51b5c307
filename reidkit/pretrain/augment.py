"""Batched, colour-invariant augmentations for self-supervised pretraining.

Two random views of one image must look alike to the network, so whatever the augmentations change, the
features learn to ignore. Infrared and thermal cameras see no colour, and they map materials to grey
levels by a response that has little to do with visible brightness (a dark shirt can look bright to a
thermal camera, a dyed one white under a near-infrared illuminator). So besides the usual crops, flips,
blur and colour jitter (SimCLR, Chen et al. 2020; MoCo v2, Chen et al. 2020), a view here may be:

- **single-channel**: the luma image or one colour channel copied to all three (the channel exchange of
  CAJ, Ye et al. ICCV 2021), so colour cannot carry identity;
- **re-mapped in grey level** by a random tone curve: a piecewise-linear function of intensity with random
  knots, sometimes monotone, sometimes not, sometimes the plain inversion; it models an unknown spectral
  response, so only shape, texture and print geometry survive it;
- **looked up in a random colour table** (off by default): each colour gets a grey level that is a random
  smooth function of the colour, not of its brightness, so two garments of equal brightness can turn one
  dark and one light, as dyes do under a near-infrared illuminator (dyes that are transparent there show the
  fibre beneath) or in a thermal image;
- **unevenly lit** (off by default): a smooth random gain falling off from a random centre, as an active
  near-infrared illuminator lights the middle of the scene more than its edges.

Everything runs on whole batches ([B, 3, H, W] float in [0, 1]) on the training device, with its
randomness drawn from the ``torch.Generator`` given, so a resumed run draws the same views.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from reidkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, LUMA


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of :func:`augment` (defaults: the shipped recipe, docs/pretraining.md).

    Attributes:
        crop_area: range of the crop's area as a fraction of the image.
        crop_aspect: range of the crop's aspect ratio change (log-uniform).
        jitter_p / jitter: probability and strength of brightness, contrast and saturation jitter.
        mix_p: probability of a random channel mix (a hue change that can swap or blend channels).
        gray_p / exchange_p: probability of the luma image / of one channel copied to all three.
        curve_p / invert_p: probability of a random tone curve / of the plain inversion.
        blur_p / blur_sigma: probability and sigma range (pixels) of Gaussian blur.
        noise_p / noise_std: probability and maximum standard deviation of Gaussian noise.
        erase_p: probability of erasing one random rectangle (2-25 % of the image) with a random grey.
        lut_p / lut_size: probability of a random colour-to-grey table, and its knots per colour axis.
        light_p / light_falloff: probability of uneven lighting, and the range of its fall-off strength.
        local_crop_area: range of the crop's area for multi-crop's small views (``--local-crops``).

    A probability of 0 draws nothing from the generator, so turning an augmentation off leaves every other
    draw (and so every view of a seeded run) as it was.
    """

    crop_area: tuple[float, float] = (0.35, 1.0)
    crop_aspect: tuple[float, float] = (0.75, 1.333)
    jitter_p: float = 0.8
    jitter: float = 0.4
    mix_p: float = 0.3
    gray_p: float = 0.25
    exchange_p: float = 0.25
    curve_p: float = 0.5
    invert_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    noise_p: float = 0.3
    noise_std: float = 0.04
    erase_p: float = 0.25
    lut_p: float = 0.0
    lut_size: int = 4
    light_p: float = 0.0
    light_falloff: tuple[float, float] = (0.3, 2.0)
    local_crop_area: tuple[float, float] = (0.1, 0.4)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _chance(n: int, p: float, g: torch.Generator) -> Tensor:
    return torch.rand(n, generator=g) < p


def random_crop_flip(images: Tensor, cfg: AugmentConfig, g: torch.Generator,
                     size: tuple[int, int] | None = None) -> Tensor:
    """A random resized crop (area and aspect from ``cfg``) and a horizontal flip (p = 0.5), one affine
    resampling per image, to ``size`` (height, width; default: the input's)."""
    b, c = images.shape[:2]
    area = _uniform(b, *cfg.crop_area, g)
    aspect = torch.exp(_uniform(b, math.log(cfg.crop_aspect[0]), math.log(cfg.crop_aspect[1]), g))
    w = torch.sqrt(area * aspect).clamp(max=1.0)
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    tx = (1 - w) * _uniform(b, -1, 1, g)
    ty = (1 - h) * _uniform(b, -1, 1, g)
    flip = torch.where(_chance(b, 0.5, g), -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = h, ty
    theta = theta.to(images.device, images.dtype)
    out_size = [b, c, *(size or images.shape[2:])]
    grid = F.affine_grid(theta, out_size, align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _luma(images: Tensor) -> Tensor:
    weights = torch.tensor(LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def colour_jitter(images: Tensor, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """Brightness, contrast and saturation factors in [1 - s, 1 + s] (p = ``jitter_p``), then a random
    channel mix (p = ``mix_p``): each output channel a random convex blend of the input channels."""
    b, dev = images.shape[0], images.device
    on = _chance(b, cfg.jitter_p, g)
    s = cfg.jitter

    def factor() -> Tensor:
        f = _uniform(b, 1 - s, 1 + s, g)
        return torch.where(on, f, torch.ones(b)).view(b, 1, 1, 1).to(dev, images.dtype)

    out = images * factor()
    mean = _luma(out).mean(dim=(2, 3), keepdim=True)
    out = (out - mean) * factor() + mean
    grey = _luma(out)
    out = (out - grey) * factor() + grey
    mix = torch.rand(b, 3, 3, generator=g) ** 3
    mix = mix / mix.sum(-1, keepdim=True)
    mix = torch.where(_chance(b, cfg.mix_p, g).view(b, 1, 1), mix, torch.eye(3).expand(b, 3, 3))
    out = torch.einsum("bij,bjhw->bihw", mix.to(dev, images.dtype), out)
    return out.clamp(0, 1)


def colour_lookup(images: Tensor, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """With probability ``lut_p``, every pixel's colour becomes the grey level of a random table over the
    colour cube (``lut_size`` knots per axis, uniform random greys, trilinear in between), copied to all
    three channels; otherwise unchanged. Nearby colours (one garment's shading) stay nearby greys; distant
    colours get unrelated ones."""
    if cfg.lut_p <= 0:
        return images
    b, dev = images.shape[0], images.device
    n = cfg.lut_size
    table = torch.rand(b, 1, n, n, n, generator=g).to(dev, images.dtype)
    on = _chance(b, cfg.lut_p, g).view(b, 1, 1, 1).to(dev)
    grid = (images.clamp(0, 1) * 2 - 1).permute(0, 2, 3, 1).unsqueeze(1)  # [B, 1, H, W, (R, G, B)]
    grey = F.grid_sample(table, grid, mode="bilinear", align_corners=True).squeeze(2)  # [B, 1, H, W]
    return torch.where(on, grey.expand_as(images), images)


def uneven_light(images: Tensor, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """With probability ``light_p``, a gain exp(-k d^2) over the image, d the distance (in image heights and
    widths) from a random centre in the middle half of the image and k in ``light_falloff``."""
    if cfg.light_p <= 0:
        return images
    b, _, h, w = images.shape
    dev = images.device
    cy, cx = _uniform(b, 0.25, 0.75, g), _uniform(b, 0.25, 0.75, g)
    k = _uniform(b, *cfg.light_falloff, g) * _chance(b, cfg.light_p, g)
    rows = (torch.arange(h) + 0.5).view(1, h, 1) / h
    cols = (torch.arange(w) + 0.5).view(1, 1, w) / w
    d2 = (rows - cy.view(b, 1, 1)) ** 2 + (cols - cx.view(b, 1, 1)) ** 2
    gain = torch.exp(-k.view(b, 1, 1) * d2).unsqueeze(1).to(dev, images.dtype)
    return images * gain


def single_channel(images: Tensor, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """With probability ``gray_p`` the luma image, with ``exchange_p`` one random channel, copied to all
    three channels; otherwise unchanged."""
    b = images.shape[0]
    u = torch.rand(b, generator=g)
    channel = torch.randint(3, (b,), generator=g).to(images.device)
    picked = images.gather(1, channel.view(b, 1, 1, 1).expand(b, 1, *images.shape[2:]))
    gray = u < cfg.gray_p
    exchange = (u >= cfg.gray_p) & (u < cfg.gray_p + cfg.exchange_p)
    out = torch.where(gray.view(b, 1, 1, 1).to(images.device), _luma(images).expand_as(images), images)
    return torch.where(exchange.view(b, 1, 1, 1).to(images.device), picked.expand_as(images), out)


def tone_curve(images: Tensor, cfg: AugmentConfig, g: torch.Generator, knots: int = 5) -> Tensor:
    """A random piecewise-linear grey-level map (p = ``curve_p``; half of them monotone increasing), then
    the inversion 1 - x (p = ``invert_p``). The same map is applied to every channel of an image."""
    b, dev = images.shape[0], images.device
    values = torch.rand(b, knots, generator=g)
    monotone = _chance(b, 0.5, g)
    values = torch.where(monotone.view(b, 1), values.sort(dim=1).values, values)
    identity = torch.linspace(0, 1, knots).expand(b, knots)
    values = torch.where(_chance(b, cfg.curve_p, g).view(b, 1), values, identity)
    invert = _chance(b, cfg.invert_p, g).view(b, 1)
    values = torch.where(invert, 1 - values, values).to(dev, images.dtype)
    x = images.clamp(0, 1) * (knots - 1)
    low = x.floor().clamp(max=knots - 2)
    frac = x - low
    idx = low.long().view(b, -1)
    v0 = values.gather(1, idx).view_as(images)
    v1 = values.gather(1, idx + 1).view_as(images)
    return v0 + (v1 - v0) * frac


def gaussian_blur(images: Tensor, cfg: AugmentConfig, g: torch.Generator, radius: int = 4,
                  scale: float = 1.0) -> Tensor:
    """Separable Gaussian blur with a per-image sigma (p = ``blur_p``), as one grouped convolution; ``scale``
    multiplies the sigma (views made smaller than the images keep the same blur relative to the person)."""
    b, c, h, w = images.shape
    sigma = _uniform(b, *cfg.blur_sigma, g) * scale
    on = _chance(b, cfg.blur_p, g)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x.view(1, -1) / sigma.view(-1, 1)) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    delta = (x == 0).float().expand(b, -1)
    kernel = torch.where(on.view(b, 1), kernel, delta).to(images.device, images.dtype)
    k = kernel.repeat_interleave(c, dim=0)  # [B*C, 2r+1]
    flat = images.reshape(1, b * c, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, k.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.conv2d(flat, k.view(b * c, 1, -1, 1), groups=b * c)
    return flat.view(b, c, h, w)


def noise_and_erase(images: Tensor, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """Gaussian noise (p = ``noise_p``, std up to ``noise_std``, the same in every channel) and one erased
    rectangle filled with a random grey (p = ``erase_p``)."""
    b, _, h, w = images.shape
    dev = images.device
    std = _uniform(b, 0, cfg.noise_std, g) * _chance(b, cfg.noise_p, g)
    noise = torch.randn(b, 1, h, w, generator=g).to(dev, images.dtype) * std.view(b, 1, 1, 1).to(dev)
    out = images + noise
    area = _uniform(b, 0.02, 0.25, g)
    aspect = torch.exp(_uniform(b, math.log(0.3), math.log(3.3), g))
    eh = (torch.sqrt(area * aspect) * h).clamp(max=h)
    ew = (torch.sqrt(area / aspect) * w).clamp(max=w)
    top = torch.rand(b, generator=g) * (h - eh)
    left = torch.rand(b, generator=g) * (w - ew)
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    inside = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
              & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)))
    inside &= _chance(b, cfg.erase_p, g).view(b, 1, 1)
    fill = torch.rand(b, generator=g).view(b, 1, 1, 1).to(dev, images.dtype)
    return torch.where(inside.unsqueeze(1).to(dev), fill, out).clamp(0, 1)


def normalise(images: Tensor) -> Tensor:
    """[0, 1] images -> ImageNet-normalised, as every reidkit pipeline feeds its backbones."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def augment(images: Tensor, cfg: AugmentConfig, g: torch.Generator,
            size: tuple[int, int] | None = None) -> Tensor:
    """One random view of each image: [B, 3, H, W] in [0, 1] -> normalised [B, 3, h, w], (h, w) = ``size``
    (default: H, W). The crop resamples straight to ``size``, so smaller views cost less in every later
    augmentation and in the network."""
    x = random_crop_flip(images, cfg, g, size)
    x = colour_jitter(x, cfg, g)
    x = colour_lookup(x, cfg, g)
    x = single_channel(x, cfg, g)
    x = uneven_light(x, cfg, g)
    x = tone_curve(x, cfg, g)
    x = gaussian_blur(x, cfg, g, scale=x.shape[2] / images.shape[2])
    x = noise_and_erase(x, cfg, g)
    return normalise(x)
