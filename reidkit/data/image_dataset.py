"""Image loading and the map-style dataset of training views.

:func:`load_image` decodes a file completely, so a truncated or corrupt image fails where it is read, with a
:class:`BadImageError` naming the file, instead of later inside a transform or a worker.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from reidkit.data.image_cache import ImageCache
from reidkit.data.records import Sample


class BadImageError(ValueError):
    """An image (or mask) file that is missing or cannot be decoded; the message names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"bad image {self.path}: {reason}")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read ``path`` fully and return it as an RGB PIL image.

    Raises :class:`BadImageError` for a missing, unreadable, truncated or non-image file. (A process that
    sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` makes PIL accept truncated files.)
    """
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise BadImageError(path, "file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from e


def load_image_cached(path: str | os.PathLike, cache: ImageCache | None) -> Image.Image:
    """:func:`load_image`, decoding ``path`` only the first time when a cache is given."""
    if cache is None:
        return load_image(path)
    return Image.fromarray(cache.get(path, lambda: np.asarray(load_image(path))))


class ImageDataset(Dataset):
    """Training images, each returned as one tensor per view (and its shape mask when asked for).

    Args:
        samples: the images.
        views: one transform per view (PIL image -> [3, H, W] tensor); each draws its own randomness.
        mask_transform: when given, every sample's mask (``Sample.mask_path``, loaded as RGB) is returned
            through it, with random geometry independent of the image's, as in IMSL's code.

    ``dataset[i]`` is ``{"views": tuple of [3, H, W], "mask": [3, H, W] or None, "index": i, "camera": int}``.
    """

    def __init__(self, samples: Sequence[Sample], views: Sequence[Callable[[Image.Image], Tensor]], *,
                 mask_transform: Callable[[Image.Image], Tensor] | None = None,
                 cache: ImageCache | None = None) -> None:
        if not views:
            raise ValueError("ImageDataset needs at least one view transform")
        self.samples = samples
        self.views = tuple(views)
        self.mask_transform = mask_transform
        self.cache = cache

    def __len__(self) -> int:
        return len(self.samples)

    def _mask(self, sample: Sample) -> Tensor | None:
        if self.mask_transform is None:
            return None
        if sample.mask_path is None:
            raise BadImageError(sample.path, "no shape mask for this image (the method needs masks; "
                                "see data.mask_root)")
        try:
            mask = load_image_cached(sample.mask_path, self.cache)
        except BadImageError as e:
            raise BadImageError(e.path, f"{e.reason} (the shape mask of {sample.path})") from None
        return self.mask_transform(mask)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = load_image_cached(sample.path, self.cache)
        return {
            "views": tuple(view(image) for view in self.views),
            "mask": self._mask(sample),
            "index": index,
            "camera": int(sample.camera),
        }
