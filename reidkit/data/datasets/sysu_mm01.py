"""SYSU-MM01 in its official layout, with the official evaluation protocols (github.com/wuancong/SYSU-MM01;
docs/datasets.md, "Protocols, exactly").

::

    <root>/cam1 ... cam6/<person id, 4 digits>/<image, 4 digits>.jpg
    <root>/exp/train_id.txt, val_id.txt, test_id.txt      one line of comma-separated person ids
    <root>/exp/rand_perm_cam.mat                           optional: the official gallery permutations

Cameras 1, 2, 4, 5 are visible, 3 and 6 infrared; camera ids are kept. Training = train + val ids
(395 ids, 22,258 visible + 11,909 infrared images). Queries = every infrared image of the 96 test ids
(3,803), the same in every trial. Gallery per trial = per test id and visible camera of the mode, 1 image
(single-shot) or up to 10 (multi-shot); 10 trials, averaged. Camera-3 queries skip all camera-2 gallery
images (``sysu-location``); CMC is identity-deduplicated; mAP and mINP use the full list.

Gallery sampler (``dataset_args.gallery_sampler``): ``official`` reads ``rand_perm_cam.mat`` (from the official
evaluation repository, not the dataset zip: row ``trial`` of the permutation of each camera and person);
``seeded`` is AGW's ``random.seed(trial); random.choice(...)`` over sorted ids and cameras, so its numbers
match the AGW-family code; ``auto`` uses the file when present. ``Protocol.info["sampler"]`` says which.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reidkit.config import option
from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.datasets.layout import attach_masks, list_images, read_id_line, resolve_root, write_image
from reidkit.data.records import Sample
from reidkit.evaluation.protocols import seeded_gallery

log = logging.getLogger(__name__)

VISIBLE_CAMERAS = (1, 2, 4, 5)
INFRARED_CAMERAS = (3, 6)
ROLES = {"visible": "colour", "infrared": "infrared"}
MODES = {"all-search": (1, 2, 4, 5), "indoor-search": (1, 2)}
MULTI_SHOT = 10
TRIALS = 10
PERMUTATION_PLACES = ("exp/rand_perm_cam.mat", "rand_perm_cam.mat", "evaluation/data_split/rand_perm_cam.mat",
                      "data_split/rand_perm_cam.mat")
LAYOUT = "cam1..cam6/<pid>/<img>.jpg and exp/{train_id,val_id,test_id}.txt"


# ------------------------------------------------------------------------------------- the sampler
def load_permutations(path: Path) -> list[np.ndarray]:
    """``rand_perm_cam.mat`` as ``perm[camera - 1][person_id - 1] -> [trials, n]`` 1-based image indices."""
    from scipy.io import loadmat

    try:
        raw = loadmat(str(path))["rand_perm_cam"]
    except (KeyError, ValueError, OSError, NotImplementedError) as e:
        raise DatasetError(f"{path}: not a readable rand_perm_cam.mat ({e})") from None
    return [np.asarray(cell, dtype=object).reshape(-1) for cell in np.asarray(raw, dtype=object).reshape(-1)]


def official_gallery(perm: list[np.ndarray], groups: dict[tuple[int, int], list[int]], cameras: Sequence[int],
                     trial: int, shots: int, sizes: dict[tuple[int, int], int]) -> np.ndarray:
    """Positions of one trial's gallery, camera by camera as the MATLAB code assembles it."""
    picked: list[int] = []
    for cam in cameras:
        for (g_cam, pid), positions in sorted(groups.items(), key=lambda kv: kv[0][1]):
            if g_cam != cam:
                continue
            persons = perm[cam - 1] if cam - 1 < len(perm) else np.empty(0, dtype=object)
            known = pid - 1 < len(persons)
            table = np.atleast_2d(np.asarray(persons[pid - 1])) if known else np.empty((0, 0))
            if table.size == 0:
                continue  # the official code skips (camera, person) pairs without a permutation
            chosen = np.asarray(table[trial][:shots], dtype=np.int64)
            if chosen.max() > sizes[(cam, pid)] or chosen.min() < 1:
                raise DatasetError(f"rand_perm_cam.mat picks image {int(chosen.max())} of "
                                   f"cam{cam}/{pid:04d}, which holds {sizes[(cam, pid)]} images: the file "
                                   "does not fit this copy")
            picked.extend(positions[i - 1] for i in chosen)
    return np.asarray(picked, dtype=np.int64)


# ------------------------------------------------------------------------------------------ dataset
@dataclass(frozen=True)
class SYSUConfig:
    """``dataset_args`` of SYSU-MM01."""

    gallery_sampler: str = option("auto", choices=("auto", "official", "seeded"),
                                  help="gallery sampling: official = rand_perm_cam.mat, seeded = AGW's "
                                       "random.seed(trial), auto = the file when present")


class SYSUMM01(ReIDDataset):
    name = "sysu_mm01"
    Config = SYSUConfig
    official_counts = {
        "train": {"visible": {"images": 22258, "ids": 395}, "infrared": {"images": 11909, "ids": 395}},
        "protocols": {  # indoor 112: what AGW-family logs print, not re-counted (docs/datasets.md)
            "all-search": {"query": 3803, "gallery": 301, "trials": 10},
            "indoor-search": {"query": 3803, "gallery": 112, "trials": 10},
            "all-search-multishot": {"query": 3803, "trials": 10},
            "indoor-search-multishot": {"query": 3803, "trials": 10},
        },
    }

    @classmethod
    def from_config(cls, cfg: Any, args: SYSUConfig | None = None) -> SYSUMM01:
        root = resolve_root(cfg.root, "SYSU-MM01", ("exp", "cam1"), LAYOUT, subfolders=("SYSU-MM01",))
        return cls.from_root(root, sampler=cls.options(args).gallery_sampler, mask_root=cfg.mask_root)

    @classmethod
    def write_example(cls, root: Path) -> Path:
        """Ids 1-2 train, 3 val, 4-5 test; one or two images per camera."""
        root = Path(root) / "SYSU-MM01"
        for pid in range(1, 6):
            for cam in range(1, 7):
                for i in range(1, 1 + (pid + cam) % 2 + 1):
                    write_image(root / f"cam{cam}" / f"{pid:04d}" / f"{i:04d}.jpg", pid)
        (root / "exp").mkdir()
        for name, ids in (("train_id", "1,2"), ("val_id", "3"), ("test_id", "4,5")):
            (root / "exp" / f"{name}.txt").write_text(ids + "\n")
        return root

    @classmethod
    def from_root(cls, root: Path, *, sampler: str = "auto", mask_root: str | None = None) -> SYSUMM01:
        exp = root / "exp"
        train_ids = sorted(set(read_id_line(exp / "train_id.txt")) | set(read_id_line(exp / "val_id.txt")))
        test_ids = sorted(set(read_id_line(exp / "test_id.txt")))
        cameras = (*VISIBLE_CAMERAS, *INFRARED_CAMERAS)
        missing = [f"cam{c}" for c in cameras if not (root / f"cam{c}").is_dir()]
        if missing:
            raise DatasetError(f"{root}: missing camera folders {', '.join(missing)} (expected {LAYOUT})")
        train = attach_masks(cls._samples(root, train_ids, (1, 2, 3, 4, 5, 6)), root, mask_root)
        if not train:
            raise DatasetError(f"{root}: no training images under cam*/<train id>/ (expected {LAYOUT})")
        query = attach_masks(cls._samples(root, test_ids, INFRARED_CAMERAS), root, mask_root, "test")
        perm_file, notes = cls._sampler(root, sampler)
        perm = load_permutations(perm_file) if perm_file else None
        protocols = {}
        for mode, cameras in MODES.items():
            pool = attach_masks(cls._samples(root, test_ids, cameras), root, mask_root, "test")
            for shots, suffix in ((1, ""), (MULTI_SHOT, "-multishot")):
                name = mode + suffix
                protocols[name] = cls._protocol(name, query, pool, cameras, shots, perm)
        return cls(str(root), ("visible", "infrared"), train, protocols, notes=notes, roles=ROLES)

    @staticmethod
    def _samples(root: Path, ids: Sequence[int], cameras: Sequence[int]) -> list[Sample]:
        """Images of ``ids`` in ``cameras``, person by person then camera by camera (the official order)."""
        return [Sample(path, pid, cam, "visible" if cam in VISIBLE_CAMERAS else "infrared")
                for pid in ids for cam in cameras for path in list_images(root / f"cam{cam}" / f"{pid:04d}")]

    @staticmethod
    def _sampler(root: Path, choice: str) -> tuple[Path | None, list[str]]:
        found = next((root / p for p in PERMUTATION_PLACES if (root / p).is_file()), None)
        if choice == "official" and found is None:
            raise DatasetError(
                f"dataset_args.gallery_sampler=official needs rand_perm_cam.mat in {root / 'exp'}; it ships "
                "with the official evaluation code (github.com/wuancong/SYSU-MM01, evaluation/data_split/), "
                "not with the dataset zip. Copy it there or use dataset_args.gallery_sampler=seeded.")
        if choice != "seeded" and found is not None:
            return found, [f"gallery sampler: official permutations from {found}"]
        why = "dataset_args.gallery_sampler=seeded" if choice == "seeded" else \
            f"no rand_perm_cam.mat in {root / 'exp'}"
        return None, [f"gallery sampler: seeded (AGW-compatible random.seed(trial)), {why}; numbers compare "
                      "with the AGW-family code, not bit-for-bit with the official MATLAB evaluation"]

    @staticmethod
    def _protocol(name: str, query: list[Sample], pool: list[Sample], cameras: Sequence[int], shots: int,
                  perm: list[np.ndarray] | None) -> Protocol:
        groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(pool):
            groups.setdefault((s.camera, s.person_id), []).append(i)
        if perm is None:
            ordered = [groups[k] for k in sorted(groups, key=lambda cp: (cp[1], cameras.index(cp[0])))]
            trials = [seeded_gallery(ordered, t, shots) for t in range(TRIALS)]
        else:
            sizes = {k: len(v) for k, v in groups.items()}
            trials = [official_gallery(perm, groups, cameras, t, shots, sizes) for t in range(TRIALS)]
        info = {"sampler": "seeded" if perm is None else "official", "shots": shots}
        return Protocol(name, query, pool, trials, exclusion="sysu-location", dedup_cmc=True, info=info)
