"""Image transforms: the standard re-id train/test pipelines and the channel augmentations of CAJ/ADCA/IMSL.

Pipelines map a PIL image to a normalised ``[3, H, W]`` float tensor. The channel operations
(:class:`ChannelExchange`, :class:`ChannelAdapGray`, :class:`ChannelRandomErasing`, :class:`Grayscale`)
act on such a normalised tensor, as in the official code of CAJ (Ye et al., ICCV 2021;
github.com/mangye16/Cross-Modal-Re-ID-baseline, ``ChannelAug.py``) and IMSL (Pang et al., TCSVT 2024;
github.com/zqpang/IMSL), and return a new tensor.

Every random choice is drawn from torch's global RNG (never Python's ``random`` or numpy's global state),
so the engine's per-worker torch seeding makes a run reproducible.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R 601 luma weights, applied to the normalised channels as the CAJ code does.
LUMA = (0.2989, 0.5870, 0.1140)
# CAJ's ChannelRandomErasing fill (its authors' per-channel means), kept for fidelity.
CAJ_ERASE_FILL = (0.4914, 0.4822, 0.4465)


def _resize(size: tuple[int, int]) -> T.Resize:
    return T.Resize(tuple(size), interpolation=T.InterpolationMode.BICUBIC)


#: Random erasing draws of :func:`train_transform` (``erasing=``). ``torchvision``: torchvision's
#: RandomErasing, aspect ratio log-uniform in [0.3, 3.33], at most 10 draws. ``uniform``: the draw of the
#: CAJ and IMSL code (:class:`ChannelRandomErasing`), aspect ratio uniform in [0.3, 1/0.3], at most 100.
ERASING_KINDS = ("torchvision", "uniform")


def train_transform(size: tuple[int, int], *, extra: Sequence[Callable[[Tensor], Tensor]] = (),
                    after: Sequence[Callable[[Tensor], Tensor]] = (), flip: bool = True, pad: int = 10,
                    erase_p: float = 0.5, erasing: str = "torchvision") -> Callable[[Image.Image], Tensor]:
    """The standard re-id training pipeline: PIL image -> normalised [3, H, W] tensor.

    Bicubic resize to ``size`` = (H, W), horizontal flip (p = 0.5), zero-pad by ``pad`` and random crop
    back to ``size``, to tensor, ImageNet normalisation, the ``extra`` tensor operations in order, then
    random erasing (p = ``erase_p``, area 0.02-0.4, aspect 0.3-3.33) filled with the ImageNet mean *values*
    written into the normalised tensor (as IMSL's code fills it), then the ``after`` tensor operations.

    ``erasing`` picks how the rectangle is drawn (:data:`ERASING_KINDS`): ``torchvision`` (log-uniform
    aspect, 10 tries) or ``uniform`` (uniform aspect, 100 tries, the official IMSL/CAJ draw).

    Where a channel operation goes decides what erased areas look like: in ``extra`` (e.g. CAJ's
    pipelines) the rectangle keeps its per-channel fill, so it is coloured on a one-channel image; in
    ``after`` (IMSL's official visible pipeline: erase, then ``ChannelExchange``) it is exchanged with the
    image and comes out grey.
    """
    if erasing not in ERASING_KINDS:
        raise ValueError(f"erasing must be one of {ERASING_KINDS}, got {erasing!r}")
    steps: list[Callable] = [_resize(size)]
    if flip:
        steps.append(T.RandomHorizontalFlip(p=0.5))
    if pad > 0:
        steps += [T.Pad(pad), T.RandomCrop(tuple(size))]
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD), *extra]
    if erase_p > 0:
        if erasing == "uniform":
            steps.append(ChannelRandomErasing(p=erase_p, area=(0.02, 0.4), min_aspect=0.3, fill=IMAGENET_MEAN))
        else:
            steps.append(T.RandomErasing(p=erase_p, scale=(0.02, 0.4), ratio=(0.3, 3.33),
                                         value=list(IMAGENET_MEAN)))
    steps += list(after)
    return T.Compose(steps)


class TestTransform:
    """The clustering and test-time pipeline: bicubic resize to (H, W), to tensor, ImageNet normalisation.

    Called on a PIL image it is ``Compose([Resize, ToTensor, Normalize])``. It also splits in two, which is
    how the test-time loader uses it: :meth:`resized` gives the resized uint8 pixels (what an
    :class:`~reidkit.data.image_cache.ImageCache` keeps) and :meth:`normalise` turns a batch of them into
    the same float tensors, bit for bit, in one operation instead of one per image.
    """

    __test__ = False  # not a pytest test class, although test modules import it

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self._resize = _resize(self.size)
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def resized(self, image: Image.Image) -> np.ndarray:
        """uint8 [H, W, 3]: the image resized to ``size``."""
        return np.asarray(self._resize(image if image.mode == "RGB" else image.convert("RGB")))

    def normalise(self, batch: Tensor) -> Tensor:
        """uint8 [B, H, W, 3] -> normalised float [B, 3, H, W] (ToTensor's scaling, then Normalize)."""
        if batch.dim() != 4 or batch.shape[-1] != 3 or batch.dtype != torch.uint8:
            raise ValueError(f"expected uint8 images [B, H, W, 3], got {batch.dtype} {tuple(batch.shape)}")
        images = batch.permute(0, 3, 1, 2).contiguous().to(torch.get_default_dtype()).div(255)
        return images.sub_(self._mean).div_(self._std)

    def __call__(self, image: Image.Image) -> Tensor:
        return self.normalise(torch.from_numpy(self.resized(image).copy())[None])[0]

    def __repr__(self) -> str:
        return f"TestTransform(size={self.size})"


def test_transform(size: tuple[int, int]) -> TestTransform:
    """Clustering and test-time pipeline: bicubic resize to (H, W), to tensor, ImageNet normalisation."""
    return TestTransform(size)


test_transform.__test__ = False  # not a pytest test, although test modules import it by this name


# ------------------------------------------------------------------------------------------------------
# channel operations on one normalised [3, H, W] image
# ------------------------------------------------------------------------------------------------------
def _check_image(img: Tensor) -> None:
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"expected a [3, H, W] image tensor, got shape {tuple(img.shape)}")


def _replicate(img: Tensor, channel: int) -> Tensor:
    """[3, H, W] -> [3, H, W] with every channel a copy of ``channel``."""
    return img[channel:channel + 1].expand(3, -1, -1).clone()


def _luma(img: Tensor) -> Tensor:
    """[3, H, W] -> [3, H, W] weighted channel sum copied to every channel."""
    weights = torch.tensor(LUMA, dtype=img.dtype, device=img.device).view(3, 1, 1)
    return (img * weights).sum(dim=0, keepdim=True).expand(3, -1, -1).clone()


def _randint(high: int) -> int:
    """Uniform integer in [0, high) from torch's RNG."""
    return int(torch.randint(high, (1,)).item())


def _rand() -> float:
    return float(torch.rand(1).item())


class ChannelExchange:
    """Random channel: copy one of R/G/B, chosen uniformly, into all three channels.

    The choice is uniform over ``0..gray``: 0-2 pick R, G or B; values above 2 give the grayscale
    (luma) image. ``gray=2`` (the IMSL/ADCA setting) never picks grayscale.
    """

    def __init__(self, gray: int = 2) -> None:
        if gray < 0:
            raise ValueError(f"ChannelExchange needs gray >= 0, got {gray}")
        self.gray = int(gray)

    def __call__(self, img: Tensor) -> Tensor:
        _check_image(img)
        choice = _randint(self.gray + 1)
        return _replicate(img, choice) if choice < 3 else _luma(img)

    def __repr__(self) -> str:
        return f"ChannelExchange(gray={self.gray})"


class ChannelAdapGray:
    """CAJ's adaptive gray for infrared images.

    With probability 3/4 one of R/G/B (uniform) is copied to all channels; otherwise the image becomes
    grayscale with probability ``p`` and is left unchanged with probability 1 - ``p``.
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"ChannelAdapGray needs 0 <= p <= 1, got {p}")
        self.p = float(p)

    def __call__(self, img: Tensor) -> Tensor:
        _check_image(img)
        choice = _randint(4)
        if choice < 3:
            return _replicate(img, choice)
        return _luma(img) if _rand() < self.p else img.clone()

    def __repr__(self) -> str:
        return f"ChannelAdapGray(p={self.p})"


class ChannelRandomErasing:
    """Random erasing as CAJ's and IMSL's code draw it: with probability ``p`` fill one rectangle with ``fill``.

    The rectangle covers ``area`` (2-40 %) of the image, with an aspect ratio (height / width) drawn
    *uniformly* in [``min_aspect``, 1 / ``min_aspect``] = [0.3, 3.33]; up to 100 draws are tried until
    both sides are smaller than the image's, and the image is left as it is when none fits. Channel c of
    the rectangle is set to ``fill[c]``. This is CAJ's ``ChannelRandomErasing`` (fill
    :data:`CAJ_ERASE_FILL`) and IMSL's ``RandomErasing`` (``imsl/utils/data/transforms.py``, built in
    ``train.py`` with the ImageNet mean values :data:`IMAGENET_MEAN` as fill); torchvision's RandomErasing
    instead draws the aspect log-uniformly with 10 tries.
    """

    def __init__(self, p: float = 0.5, *, area: tuple[float, float] = (0.02, 0.4), min_aspect: float = 0.3,
                 fill: Sequence[float] = CAJ_ERASE_FILL) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"ChannelRandomErasing needs 0 <= p <= 1, got {p}")
        self.p = float(p)
        self.area = (float(area[0]), float(area[1]))
        self.min_aspect = float(min_aspect)
        self.fill = tuple(float(v) for v in fill)

    def __call__(self, img: Tensor) -> Tensor:
        _check_image(img)
        out = img.clone()
        if _rand() >= self.p:
            return out
        _, height, width = img.shape
        for _ in range(100):
            target = (self.area[0] + _rand() * (self.area[1] - self.area[0])) * height * width
            aspect = self.min_aspect + _rand() * (1.0 / self.min_aspect - self.min_aspect)
            h = round(math.sqrt(target * aspect))
            w = round(math.sqrt(target / aspect))
            if 0 < h < height and 0 < w < width:
                top, left = _randint(height - h + 1), _randint(width - w + 1)
                fill = torch.tensor(self.fill, dtype=img.dtype, device=img.device).view(3, 1, 1)
                out[:, top:top + h, left:left + w] = fill
                return out
        return out

    def __repr__(self) -> str:
        return f"ChannelRandomErasing(p={self.p})"


class Grayscale:
    """Deterministic luma image (0.2989 R + 0.5870 G + 0.1140 B) copied to all three channels."""

    def __call__(self, img: Tensor) -> Tensor:
        _check_image(img)
        return _luma(img)

    def __repr__(self) -> str:
        return "Grayscale()"


# ------------------------------------------------------------------------------------------------------
# batch operations on [B, 3, H, W]
# ------------------------------------------------------------------------------------------------------
def channel_view(images: Tensor, channel: int) -> Tensor:
    """[B, 3, H, W] -> [B, 3, H, W] with channel ``channel`` (0 = R, 1 = G, 2 = B) copied to all three.

    Deterministic single-channel views, e.g. for CHCR's inter-channel refinement.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W], got shape {tuple(images.shape)}")
    if channel not in (0, 1, 2):
        raise ValueError(f"channel must be 0, 1 or 2, got {channel!r}")
    return images[:, channel:channel + 1].expand(-1, 3, -1, -1).contiguous()


def hflip(images: Tensor) -> Tensor:
    """[..., H, W] -> the same images mirrored left-right (flip test-time augmentation)."""
    return images.flip(-1)
