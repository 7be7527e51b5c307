"""Up-front image validation for ``data.on_bad_image = skip``: decode every file once, list the bad ones.

Skipping is never silent: the skipped files are logged and recorded in ``metrics.json``. With the default
``error`` nothing is scanned here, and the first unreadable file stops the run with its path.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np

from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.image_dataset import BadImageError, load_image
from reidkit.data.records import Sample

log = logging.getLogger(__name__)


def find_bad_images(samples: Sequence[Sample], progress: Callable[[int], None] | None = None) -> dict[str, str]:
    """``{path: reason}`` for every sample whose image cannot be decoded."""
    bad: dict[str, str] = {}
    for s in samples:
        try:
            load_image(s.path)
        except (BadImageError, OSError) as e:
            bad[s.path] = str(e)
        if progress is not None:
            progress(1)
    return bad


def _filter_protocol(p: Protocol, bad: set[str]) -> Protocol:
    keep = np.array([s.path not in bad for s in p.gallery_pool], dtype=bool)
    new_index = np.cumsum(keep) - 1
    trials = [new_index[t[keep[t]]] for t in p.trials]
    return dataclasses.replace(p, query=[s for s in p.query if s.path not in bad],
                               gallery_pool=[s for s, k in zip(p.gallery_pool, keep) if k], trials=trials)


def drop_bad_images(dataset: ReIDDataset) -> list[dict[str, str]]:
    """Remove undecodable images from the training set and every (test or validation) protocol; returns what
    was skipped."""
    samples = {s.path: s for s in dataset.train}
    protocol_sets = [dataset.protocols, dataset.validation]
    for p in (p for protocols in protocol_sets for p in protocols.values()):
        samples.update({s.path: s for s in (*p.query, *p.gallery_pool)})
    bad = find_bad_images(list(samples.values()))
    if not bad:
        return []
    for path, reason in bad.items():
        log.warning("skipping unreadable image %s (%s)", path, reason)
    dataset.train = [s for s in dataset.train if s.path not in bad]
    if not dataset.train:
        raise DatasetError("every training image is unreadable")
    for protocols in protocol_sets:
        for name, p in list(protocols.items()):
            protocols[name] = _filter_protocol(p, set(bad))
    return [{"path": path, "reason": reason} for path, reason in sorted(bad.items())]
