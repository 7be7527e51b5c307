"""Sample records: the one description of an image that every part of reidkit passes around."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One image.

    Attributes:
        path: absolute or root-relative path of the image file.
        person_id: identity label as found in the dataset (-1 when unknown). Unsupervised methods never
            read it directly (see ``EpochContext.ground_truth``).
        camera: camera id as the dataset names it (SYSU-MM01 keeps 1-6).
        modality: one of the dataset's modality names (``visible``, ``infrared``, ``thermal``, ``nir``, ``tir``).
        mask_path: path of the shape mask PNG, when the dataset has one.
    """

    path: str
    person_id: int
    camera: int
    modality: str
    mask_path: str | None = None


def count_by_modality(samples: Iterable[Sample]) -> dict[str, dict[str, int]]:
    """``{modality: {"images": n, "ids": k}}`` for a list of samples (``data check`` uses it)."""
    images: Counter = Counter()
    ids: dict[str, set] = {}
    for s in samples:
        images[s.modality] += 1
        ids.setdefault(s.modality, set()).add(s.person_id)
    return {m: {"images": images[m], "ids": len(ids[m])} for m in sorted(images)}
