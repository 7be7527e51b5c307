"""Protocol rules: which gallery entries a query skips, and how a trial's gallery is sampled.

Exclusion rules (``Protocol.exclusion``), as boolean [Q, G] masks for ``rank_metrics(ignore=...)``. Each
is a function ``rule(query, gallery) -> bool [Q, G]`` registered under the ``reidkit.exclusions`` entry
points (setup.cfg), so a dataset plugin adds its own rule without editing reidkit. The built-in ones:

- ``none``: nothing is skipped (RegDB, RGBNT201 by default).
- ``same-id-same-camera``: the Market-1501 rule; a query skips gallery images of its own identity taken
  by its own camera (LLCM, generic).
- ``sysu-location``: the official SYSU-MM01 rule. Cameras are mapped to locations (camera 3, infrared,
  shares room 2 with visible camera 2) and a query skips *every* gallery image from its own location,
  whatever the identity. With infrared queries (cameras 3 and 6) and a visible gallery (1, 2, 4, 5) this
  is exactly: camera-3 queries skip all camera-2 gallery images.
- ``aligned-twin``: RGBNT201; a query skips the gallery images captured at the same moment as itself
  (its aligned NIR / TIR / RGB twins). A capture is identified by person id and file name with the
  modality tag removed (``_c<m>`` in IMSL's renamed files; the original release shares file names).

Gallery samplers: :func:`seeded_gallery` reproduces the AGW / DEEN code exactly (``random.seed(trial)``
then ``random.choice`` per identity and camera, in sorted order), so its numbers are comparable with the
papers that use that code.
"""
from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import PurePath

import numpy as np

from reidkit.data.records import Sample

#: SYSU-MM01 camera -> location (official MATLAB ``cam_id = [1 2 2 4 5 6]``)
SYSU_LOCATION = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}

_MODALITY_TAG = re.compile(r"^(-?\d+)_c\d")


def capture_key(sample: Sample) -> str:
    """The file name of a capture with any IMSL modality tag (``<pid>_c<m>``) neutralised."""
    stem = PurePath(sample.path).stem
    return _MODALITY_TAG.sub(r"\1_c", stem, count=1)


def _ids(samples: Sequence[Sample]) -> np.ndarray:
    return np.fromiter((s.person_id for s in samples), dtype=np.int64, count=len(samples))


def _cameras(samples: Sequence[Sample]) -> np.ndarray:
    return np.fromiter((s.camera for s in samples), dtype=np.int64, count=len(samples))


def exclude_nothing(query: Sequence[Sample], gallery: Sequence[Sample]) -> np.ndarray:
    """``none``: no gallery entry is skipped."""
    return np.zeros((len(query), len(gallery)), dtype=bool)


def same_id_same_camera(query: Sequence[Sample], gallery: Sequence[Sample]) -> np.ndarray:
    """``same-id-same-camera``: the Market-1501 rule (module docstring)."""
    same_id = _ids(query)[:, None] == _ids(gallery)[None, :]
    return same_id & (_cameras(query)[:, None] == _cameras(gallery)[None, :])


def sysu_location(query: Sequence[Sample], gallery: Sequence[Sample]) -> np.ndarray:
    """``sysu-location``: a query skips every gallery image from its own location (module docstring)."""
    to_location = np.vectorize(lambda c: SYSU_LOCATION.get(int(c), int(c)), otypes=[np.int64])
    q_loc = to_location(_cameras(query)) if len(query) else np.zeros(0, np.int64)
    g_loc = to_location(_cameras(gallery)) if len(gallery) else np.zeros(0, np.int64)
    return q_loc[:, None] == g_loc[None, :]


def aligned_twin(query: Sequence[Sample], gallery: Sequence[Sample]) -> np.ndarray:
    """``aligned-twin``: a query skips the captures taken at the same moment as itself (module docstring)."""
    keys: dict[tuple[int, str], int] = {}
    q_key = np.array([keys.setdefault((s.person_id, capture_key(s)), len(keys)) for s in query], np.int64)
    g_key = np.array([keys.get((s.person_id, capture_key(s)), -1) for s in gallery], np.int64)
    return (q_key.reshape(-1, 1) == g_key.reshape(1, -1)) & (g_key.reshape(1, -1) >= 0)


def check_exclusion(rule: str) -> None:
    """Raise ``ValueError`` unless ``rule`` names a registered exclusion rule."""
    from reidkit.registry import EXCLUSIONS

    if rule not in EXCLUSIONS.names():
        raise ValueError(f"unknown exclusion rule {rule!r}; known: {', '.join(EXCLUSIONS.names())} "
                         "(a plugin adds one under the reidkit.exclusions entry points)")


def ignore_mask(rule: str, query: Sequence[Sample], gallery: Sequence[Sample]) -> np.ndarray:
    """Boolean [Q, G]: True where query i must skip gallery entry j under the registered ``rule``."""
    from reidkit.registry import EXCLUSIONS

    check_exclusion(rule)
    mask = np.asarray(EXCLUSIONS.get(rule)(query, gallery), dtype=bool)
    if mask.shape != (len(query), len(gallery)):
        raise ValueError(f"exclusion rule {rule!r} returned shape {mask.shape} for {len(query)} queries and "
                         f"{len(gallery)} gallery entries")
    return mask


def seeded_gallery(groups: Sequence[Sequence[int]], trial: int, shots: int = 1) -> np.ndarray:
    """Positions of one trial's gallery: per group, ``shots`` picks seeded by ``trial``.

    ``groups`` lists, in the order the official code visits them (sorted person ids, then the gallery
    cameras in order), each group's positions sorted by file path. Single-shot is AGW's / DEEN's
    ``random.seed(trial); random.choice(files)``, bit for bit; multi-shot keeps a group whole when it has at
    most ``shots`` images, else ``random.sample`` of ``shots`` (AGW has no multi-shot; this is reidkit's).
    """
    rng = random.Random(trial)
    picked: list[int] = []
    for group in groups:
        if not group:
            continue
        if shots == 1:
            picked.append(rng.choice(list(group)))
        elif len(group) <= shots:
            picked.extend(group)
        else:
            picked.extend(sorted(rng.sample(list(group), shots)))
    return np.asarray(picked, dtype=np.int64)
