"""LLCM (low-light cross-modality, DEEN CVPR'23) in its released layout (PEERS.md §5.3).

::

    <root>/idx/train_vis.txt, idx/train_nir.txt      lines: "<path relative to root> <label>"
    <root>/idx/test_id.txt                           one line of comma-separated test person ids
    <root>/test_vis/cam<k>/<person id, 4 digits>/<image>
    <root>/test_nir/cam<k>/<person id, 4 digits>/<image>     (no cam3 for infrared)

1,064 identities, 9 cameras. Protocols ``visible-to-infrared`` and ``infrared-to-visible``: queries =
every test image of the query modality; gallery per trial = one image per (identity, camera) of the other
modality, drawn as DEEN's ``process_gallery_llcm`` does (``random.seed(trial)``, sorted ids, cameras in
order, ``random.choice`` over sorted files); 10 trials; a query skips gallery images of its own identity
and camera; CMC deduplicated by identity.

Note: DEEN's ``test.py`` evaluates its "VIS to IR" mode by swapping the roles after sampling (the sampled
infrared images become the probes against all visible images). reidkit follows the protocol as described
(all query-modality images against a sampled gallery) in both directions; see docs/datasets.md.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.datasets.layout import attach_masks, list_images, read_id_line, resolve_root
from reidkit.data.datasets.regdb import read_labelled_list
from reidkit.data.records import Sample
from reidkit.evaluation.protocols import seeded_gallery

FOLDERS = {"visible": ("train_vis.txt", "test_vis"), "infrared": ("train_nir.txt", "test_nir")}
TRIALS = 10
LAYOUT = "idx/{train_vis,train_nir,test_id}.txt, test_vis/cam<k>/<pid>/ and test_nir/cam<k>/<pid>/"
_CAMERA_IN_PATH = re.compile(r"cam(\d+)")


def camera_from_path(path: str) -> int:
    """The ``cam<k>`` folder or name part of a path; 0 when there is none."""
    found = _CAMERA_IN_PATH.findall(path)
    return int(found[-1]) if found else 0


def camera_folders(folder: Path) -> list[int]:
    if not folder.is_dir():
        raise DatasetError(f"missing folder {folder} (expected {LAYOUT})")
    cams = [int(p.name[3:]) for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"cam\d+", p.name)]
    if not cams:
        raise DatasetError(f"{folder} holds no cam<k>/ folders (expected {LAYOUT})")
    return sorted(cams)


class LLCM(ReIDDataset):
    name = "llcm"
    official_counts = {  # CEIL's table of the LLCM split (METHODS.md §2.4); not re-counted from a copy
        "train": {"visible": {"images": 16946, "ids": 713}, "infrared": {"images": 13975, "ids": 713}},
        "protocols": {
            "visible-to-infrared": {"query": 8680, "trials": 10},
            "infrared-to-visible": {"query": 7166, "trials": 10},
        },
    }

    @classmethod
    def from_config(cls, cfg: Any) -> LLCM:
        root = resolve_root(cfg.root, "LLCM", ("idx", "test_vis"), LAYOUT, subfolders=("LLCM",))
        return cls.from_root(root, mask_root=cfg.mask_root)

    @classmethod
    def from_root(cls, root: Path, *, mask_root: str | None = None) -> LLCM:
        train: list[Sample] = []
        for modality, (listing, _) in FOLDERS.items():
            listed = read_labelled_list(root / "idx" / listing, root, modality, 0)
            train += [dataclasses.replace(s, camera=camera_from_path(os.path.relpath(s.path, root)))
                      for s in listed]
        train = attach_masks(train, root, mask_root)
        test_ids = sorted(set(read_id_line(root / "idx" / "test_id.txt")))
        test = {m: cls._test_samples(root / folder, m, test_ids) for m, (_, folder) in FOLDERS.items()}
        for m, samples in test.items():
            if not samples:
                raise DatasetError(f"{root / FOLDERS[m][1]} holds no images of the ids in idx/test_id.txt")
        test = {m: attach_masks(s, root, mask_root, "test") for m, s in test.items()}
        protocols = {}
        for q, g in (("visible", "infrared"), ("infrared", "visible")):
            name = f"{q}-to-{g}"
            protocols[name] = Protocol(name, test[q], test[g], cls._trials(test[g]),
                                       exclusion="same-id-same-camera", dedup_cmc=True,
                                       info={"sampler": "seeded", "shots": 1})
        notes = ["gallery sampler: seeded (DEEN's random.seed(trial), one image per identity and camera)"]
        return cls(str(root), tuple(FOLDERS), train, protocols, notes=notes)

    @staticmethod
    def _test_samples(folder: Path, modality: str, ids: Sequence[int]) -> list[Sample]:
        cams = camera_folders(folder)
        return [Sample(path, pid, cam, modality)
                for pid in ids for cam in cams for path in list_images(folder / f"cam{cam}" / f"{pid:04d}")]

    @staticmethod
    def _trials(pool: Sequence[Sample]) -> list:
        groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(pool):  # pool is person-major, cameras ascending: the order DEEN visits
            groups.setdefault((s.person_id, s.camera), []).append(i)
        return [seeded_gallery(list(groups.values()), t) for t in range(TRIALS)]
