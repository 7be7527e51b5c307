"""Decoded images kept in memory across the epochs of a run.

A clustering-based method reads every training image several times per epoch: its training views, one
feature pass (CHCR: three more of its visible images, one per colour channel), and the shape masks of
IMSL's SMR. Decoding the PNG or JPEG file and normalising it again each time took a fifth of a CHCR run on
the CPU (benchmarks/image-cache.md). :class:`ImageCache` keeps the decoded pixels (and, for the
deterministic test-time pipeline, the resized ones) as uint8 arrays, so each file is decoded once per run.

The cache changes no result: it returns the same pixels the file gives (tests/test_image_cache.py runs
CHCR and IMSL with and without it and compares their records). It is bounded by ``max_bytes``
(``data.image_cache_mb``): once full it keeps what it has and decodes the rest from disk each time. An entry
is keyed by the file's path, size and modification time, so a file rewritten during a run is read again.
Inside DataLoader worker processes it is bypassed: those are recreated each epoch
(``persistent_workers=False``), so what they cached would be thrown away.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from torch.utils.data import get_worker_info


class ImageCache:
    """Decoded uint8 ``[H, W, 3]`` arrays keyed by file (and a tag for derived versions), up to ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"ImageCache needs max_bytes >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._arrays: dict[tuple, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._arrays)

    @staticmethod
    def _key(path: str | os.PathLike, tag: object) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None  # the loader reports the missing file itself
        return os.fspath(path), tag, st.st_size, st.st_mtime_ns

    def get(self, path: str | os.PathLike, load: Callable[[], np.ndarray], tag: object = None) -> np.ndarray:
        """The array of ``path`` (version ``tag``): from memory, or ``load()`` and kept if it fits.

        The returned array is read-only: it is shared by every later read of the same file.
        """
        if self.max_bytes == 0 or get_worker_info() is not None:
            return load()
        key = self._key(path, tag)
        if key is not None and key in self._arrays:
            self.hits += 1
            return self._arrays[key]
        self.misses += 1
        array = load()
        if key is not None and self.bytes + array.nbytes <= self.max_bytes:
            array = np.ascontiguousarray(array)
            array.flags.writeable = False
            self._arrays[key] = array
            self.bytes += array.nbytes
        return array

    def clear(self) -> None:
        self._arrays.clear()
        self.bytes = 0

    def __repr__(self) -> str:
        return (f"ImageCache({len(self)} arrays, {self.bytes / 2**20:.1f} of {self.max_bytes / 2**20:.0f} MiB, "
                f"{self.hits} hits, {self.misses} misses)")
