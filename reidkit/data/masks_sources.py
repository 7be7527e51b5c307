"""Where shape masks come from (``reidkit data masks --source``): the contract every source meets, the
factory that builds one by name, and the built-in silhouette source.

A source is a callable object with

- ``name``: the ``--source`` name;
- ``batch_size``: how many images it takes per call;
- ``describe() -> dict``: its options, recorded in ``masks.json`` so a resumed run cannot mix sources;
- ``__call__(images: list[PIL RGB images]) -> list[bool ndarray [H, W]]``: the person region of each image,
  at that image's own size.

Sources: ``silhouette`` (:class:`SilhouetteSource`, no model, always there), ``parsing`` (a local
human-parsing model file (``torch.export`` or TorchScript), :mod:`reidkit.data.masks_parsing`) and ``mediapipe`` (the selfie
segmentation model bundled with mediapipe 0.10.21, :mod:`reidkit.data.masks_mediapipe`; the ``masks``
extra).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from reidkit.data.masks import MaskError

SOURCES = ("silhouette", "parsing", "mediapipe")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """[3, H, W] float RGB in [0, 1] of a PIL image."""
    data = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(data).permute(2, 0, 1).contiguous()


class SilhouetteSource:
    """IMSL's built-in silhouette estimate (``reidkit.data.silhouette.silhouette``; what SMR falls back to
    when a dataset has no masks), run on each image at its own size.

    The estimate takes each row's background colour from the image's left and right borders and calls a
    pixel person where its colour distance to that background exceeds a per-image Otsu threshold; no
    model, no data. Writing it to files lets the shape extensions and other tools use the same estimate.
    """

    name = "silhouette"
    batch_size = 16

    def describe(self) -> dict[str, Any]:
        return {}

    def __call__(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        from reidkit.data.silhouette import silhouette  # the one implementation, shared with IMSL

        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        out = []
        for image in images:
            x = ((to_tensor(image) - mean) / std).unsqueeze(0)
            fg = silhouette(x)[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]  # back to 0 / 1
            out.append((fg > 0.5).numpy())
        return out


def make_source(name: str, *, checkpoint: str | None = None, background_class: int = 0,
                person_classes: Sequence[int] = (), input_size: tuple[int, int] = (512, 256),
                batch_size: int = 8, device: str | None = None, threshold: float = 0.5) -> Any:
    """The mask source ``name`` with its options (each applies to the sources that say so).

    Args:
        checkpoint: ``parsing``: the model file (``.pt2`` exported program or TorchScript).
        background_class, person_classes: ``parsing``: which labels are background, or which are person.
        input_size: ``parsing``: (height, width) the images are resized to for the model.
        batch_size: ``parsing``: images per forward pass.
        device: ``parsing``: ``auto`` (default), ``cpu``, ``cuda``...
        threshold: ``mediapipe``: the least segmentation confidence counted as person.

    Raises :class:`MaskError` for an unknown name or a source that cannot be built here.
    """
    if name == "silhouette":
        return SilhouetteSource()
    if name == "parsing":
        from reidkit.data.masks_parsing import ParsingSource

        if not checkpoint:
            raise MaskError("--source parsing needs --checkpoint FILE (a .pt2 or TorchScript human-parsing model; "
                            "see docs/datasets.md, 'Shape masks for real images')")
        return ParsingSource(checkpoint, background_class=background_class, person_classes=person_classes,
                             input_size=input_size, batch_size=batch_size, device=device)
    if name == "mediapipe":
        from reidkit.data.masks_mediapipe import MediapipeSource

        return MediapipeSource(threshold=threshold)
    raise MaskError(f"unknown mask source {name!r}; known: {', '.join(SOURCES)}")
