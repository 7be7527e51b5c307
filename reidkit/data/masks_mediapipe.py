"""The ``mediapipe`` mask source: a person segmenter that ships inside a package, so it runs offline.

mediapipe 0.10.21's wheel bundles the model files of its legacy "Solutions" API, among them
``modules/selfie_segmentation/selfie_segmentation.tflite``: MediaPipe Selfie Segmentation (Apache-2.0;
``github.com/google-ai-edge/mediapipe/blob/master/docs/solutions/selfie_segmentation.md``), whose Python API
``SelfieSegmentation(model_selection=0).process(rgb)`` returns ``segmentation_mask``, a per-pixel person
confidence in [0, 1] at the image's size (``model_selection=0``: the general model, 256 x 256 input). Later
mediapipe releases drop the Solutions API for the Tasks API, which takes a ``.tflite`` file the user
downloads; with no network at run time that cannot work, so the ``masks`` extra pins 0.10.21
(``pip install 'reidkit[masks]'``; its wheels exist for Python 3.9-3.12 on x86-64 Linux, macOS and Windows).

The model was trained on colour photographs: on the synthetic benchmark it segments visible images well
and infrared ones poorly (benchmarks/mask-sources.md), so for infrared images the silhouette source may do
better (``reidkit data masks --modality``).

A pixel is person where the confidence is at least ``threshold`` (0.5).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from reidkit.data.masks import MaskError

REQUIRED = "0.10.21"


def import_mediapipe() -> Any:
    """The ``mediapipe`` module, or a :class:`MaskError` that names the ``masks`` extra."""
    try:
        import mediapipe
        from mediapipe.python.solutions import selfie_segmentation  # noqa: F401 - the legacy API we use
    except ImportError as e:
        raise MaskError(f"--source mediapipe needs mediapipe {REQUIRED} ({e}): pip install 'reidkit[masks]'") \
            from None
    version = getattr(mediapipe, "__version__", "?")
    if version != REQUIRED:
        raise MaskError(f"--source mediapipe needs mediapipe {REQUIRED}, the last release whose wheel bundles "
                        f"its segmentation model; found {version}: pip install 'reidkit[masks]'")
    return mediapipe


class MediapipeSource:
    """Person masks from mediapipe's bundled selfie segmentation model."""

    name = "mediapipe"
    batch_size = 1

    def __init__(self, *, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise MaskError(f"--threshold must lie between 0 and 1, got {threshold}")
        mp = import_mediapipe()
        self.threshold = float(threshold)
        self._graph = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def describe(self) -> dict[str, Any]:
        return {"model": "selfie_segmentation (general)", "threshold": self.threshold, "mediapipe": REQUIRED}

    def __call__(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        out = []
        for image in images:
            rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
            confidence = self._graph.process(rgb).segmentation_mask
            out.append(np.asarray(confidence) >= self.threshold)
        return out
