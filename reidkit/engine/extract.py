"""Batched feature extraction shared by clustering-time and test-time code."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from reidkit.data.image_cache import ImageCache
from reidkit.data.loaders import test_loader
from reidkit.data.records import Sample
from reidkit.data.transforms import hflip

log = logging.getLogger(__name__)


@torch.no_grad()
def extract_features(
    method: torch.nn.Module,
    samples: Sequence[Sample],
    transform: Callable,
    *,
    device: torch.device,
    batch_size: int = 128,
    workers: int = 0,
    flip: bool = False,
    view: Callable[[Tensor], Tensor] | None = None,
    source: str = "image",
    amp_dtype: torch.dtype | None = None,
    progress: Callable[[int], None] | None = None,
    cache: ImageCache | None = None,
) -> Tensor:
    """[N, D] L2-normalised features of ``samples`` (rows in input order), model in eval mode.

    Each sample goes through ``method.embed(images, modality)`` with its own modality; ``flip`` averages
    the features of the image and its horizontal flip before normalising; ``view`` maps a normalised
    batch to another view first (e.g. a single-channel image); ``cache`` keeps the decoded images for the
    next call. The model's train/eval mode is restored.
    """
    was_training = method.training
    method.eval()
    out: Tensor | None = None
    try:
        by_modality: dict[str, list[int]] = {}
        for i, s in enumerate(samples):
            by_modality.setdefault(s.modality, []).append(i)
        for modality, rows in by_modality.items():
            subset = [samples[i] for i in rows]
            start = 0
            for images in test_loader(subset, transform, batch_size=batch_size, workers=workers, source=source,
                                      cache=cache):
                images = images.to(device, non_blocking=True)
                if view is not None:
                    images = view(images)
                feats = _embed(method, images, modality, amp_dtype)
                if flip:
                    feats = feats + _embed(method, hflip(images), modality, amp_dtype)
                feats = torch.nn.functional.normalize(feats.float(), dim=1)
                if out is None:
                    out = torch.empty(len(samples), feats.shape[1], dtype=torch.float32, device=device)
                idx = torch.as_tensor(np.asarray(rows[start:start + len(feats)]), device=device)
                out[idx] = feats
                start += len(feats)
                if progress is not None:
                    progress(len(feats))
    finally:
        method.train(was_training)
    if out is None:
        raise ValueError("no samples to extract features from")
    return out


def _embed(method, images: Tensor, modality: str, amp_dtype: torch.dtype | None) -> Tensor:
    if amp_dtype is not None and images.is_cuda:
        with torch.autocast("cuda", dtype=amp_dtype):
            return method.embed(images, modality)
    return method.embed(images, modality)
