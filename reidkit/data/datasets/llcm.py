"""LLCM (low-light cross-modality; Zhang and Wang, "Diverse Embedding Expansion Network and Low-Light
Cross-Modality Benchmark for Visible-Infrared Person Re-identification", CVPR 2023) in its released layout.

::

    <root>/idx/train_vis.txt, idx/train_nir.txt      lines: "<path relative to root> <label>"
    <root>/idx/test_id.txt                           one line of comma-separated test person ids
    <root>/test_vis/cam<k>/<person id, 4 digits>/<image>     k = 1-9
    <root>/test_nir/cam<k>/<person id, 4 digits>/<image>     k = 1, 2, 4-9 (no infrared cam3)

1,064 identities, 9 cameras. Protocols ``visible-to-infrared`` and ``infrared-to-visible``. The lists are
those of the authors' code (github.com/ZYK100/LLCM, ``DEEN/data_manager.py``: ``process_query_llcm`` and
``process_gallery_llcm``), and the metrics those of its ``eval_llcm`` (``DEEN/eval_metrics.py``):

- queries: every image of the query modality, test ids in ascending order, then the official cameras in
  order, then file names sorted; the same in every trial;
- gallery of trial t (t = 0-9): ``random.seed(t)``, then per test id (ascending) and official camera of the
  other modality, one ``random.choice`` over that folder's sorted files;
- a query skips gallery images of its own identity *and* camera; CMC on the identity-deduplicated ranking,
  mAP and mINP on the full filtered ranking; queries without a true match are not counted; 10 trials
  averaged.

Held against the authors' code on random fake layouts and random distance matrices (lists bit for bit,
metrics to float precision), with these deliberate differences, all on inputs the released data does not
contain or on tied distances:

- camera folders outside the official lists (e.g. a ``test_nir/cam3``) are skipped, as the authors' code
  skips them, and reported in the dataset notes;
- an id listed twice in ``test_id.txt`` is used once (the authors' code would visit it twice);
- only image files count (the authors' code lists every file) and empty folders are skipped (where the
  authors' ``random.choice`` fails);
- cameras and ids come from the folder names (the authors' code cuts them out of the full path after the
  first ``cam``, which breaks when the dataset path itself contains ``cam``);
- ties: reidkit ranks equal distances by gallery position (a stable sort); the authors' ``np.argsort`` is
  not stable, so tied distances can rank differently there.

DEEN's ``test.py`` evaluates its "VIS to IR" mode with these very lists but then swaps the roles (the
sampled infrared images become the probes against all visible images). reidkit's ``visible-to-infrared``
is the protocol as described (all visible queries against a sampled infrared gallery), so it is not
numerically DEEN's "VIS to IR"; see docs/datasets.md.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.datasets.layout import attach_masks, list_images, read_id_line, resolve_root, write_image
from reidkit.data.datasets.regdb import read_labelled_list
from reidkit.data.records import Sample
from reidkit.evaluation.protocols import seeded_gallery

FOLDERS = {"visible": ("train_vis.txt", "test_vis"), "infrared": ("train_nir.txt", "test_nir")}
#: the test cameras the authors' code visits, in its order (``process_query_llcm`` / ``process_gallery_llcm``)
TEST_CAMERAS = {"visible": (1, 2, 3, 4, 5, 6, 7, 8, 9), "infrared": (1, 2, 4, 5, 6, 7, 8, 9)}
ROLES = {"visible": "colour", "infrared": "infrared"}
TRIALS = 10
LAYOUT = "idx/{train_vis,train_nir,test_id}.txt, test_vis/cam<k>/<pid>/ and test_nir/cam<k>/<pid>/"
_CAMERA_IN_PATH = re.compile(r"cam(\d+)")


def camera_from_path(path: str) -> int:
    """The ``cam<k>`` folder or name part of a path; 0 when there is none."""
    found = _CAMERA_IN_PATH.findall(path)
    return int(found[-1]) if found else 0


def camera_folders(folder: Path) -> list[int]:
    """The ``cam<k>`` folders in ``folder``, ascending; an error when there is none."""
    if not folder.is_dir():
        raise DatasetError(f"missing folder {folder} (expected {LAYOUT})")
    cams = [int(p.name[3:]) for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"cam\d+", p.name)]
    if not cams:
        raise DatasetError(f"{folder} holds no cam<k>/ folders (expected {LAYOUT})")
    return sorted(cams)


class LLCM(ReIDDataset):
    name = "llcm"
    official_counts: ClassVar[dict[str, Any]] = {  # CEIL's table of the LLCM split; not re-counted from a copy
        "train": {"visible": {"images": 16946, "ids": 713}, "infrared": {"images": 13975, "ids": 713}},
        "protocols": {
            "visible-to-infrared": {"query": 8680, "trials": 10},
            "infrared-to-visible": {"query": 7166, "trials": 10},
        },
    }

    @classmethod
    def from_config(cls, cfg: Any, args: Any = None) -> LLCM:
        root = resolve_root(cfg.root, "LLCM", ("idx", "test_vis"), LAYOUT, subfolders=("LLCM",))
        return cls.from_root(root, mask_root=cfg.mask_root)

    @classmethod
    def write_example(cls, root: Path) -> Path:
        """Training ids 1-2 and test ids 3-4, two cameras per modality, one image per id and camera."""
        root = Path(root) / "LLCM"
        for modality, (listing, test_folder) in FOLDERS.items():
            train_folder = test_folder.replace("test", "train")
            lines = []
            for pid in (1, 2):
                for cam in (1, 2):
                    rel = f"{train_folder}/cam{cam}/{pid:04d}/{modality}_{cam}.jpg"
                    write_image(root / rel, pid)
                    lines.append(f"{rel} {pid - 1}")
            (root / "idx").mkdir(exist_ok=True)
            (root / "idx" / listing).write_text("\n".join(lines) + "\n")
            for pid in (3, 4):
                for cam in TEST_CAMERAS[modality][:2]:
                    write_image(root / test_folder / f"cam{cam}" / f"{pid:04d}" / f"{modality}_{cam}.jpg", pid)
        (root / "idx" / "test_id.txt").write_text("3,4\n")
        return root

    @classmethod
    def from_root(cls, root: Path, *, mask_root: str | None = None) -> LLCM:
        train: list[Sample] = []
        for modality, (listing, _) in FOLDERS.items():
            listed = read_labelled_list(root / "idx" / listing, root, modality, 0)
            train += [dataclasses.replace(s, camera=camera_from_path(os.path.relpath(s.path, root)))
                      for s in listed]
        train = attach_masks(train, root, mask_root)
        notes = ["gallery sampler: seeded (DEEN's random.seed(trial), one image per identity and camera)"]
        listed_ids = read_id_line(root / "idx" / "test_id.txt")
        repeated = sorted(pid for pid, n in Counter(listed_ids).items() if n > 1)
        if repeated:
            notes.append(f"idx/test_id.txt repeats {len(repeated)} id(s), e.g. {repeated[0]}; each is used once")
        test_ids = sorted(set(listed_ids))
        test: dict[str, list[Sample]] = {}
        for m, (_, folder) in FOLDERS.items():
            found = camera_folders(root / folder)
            skipped = [c for c in found if c not in TEST_CAMERAS[m]]
            if skipped:
                notes.append(f"{folder}/: cam{', cam'.join(map(str, skipped))} skipped (not among the "
                             f"official {m} test cameras {', '.join(map(str, TEST_CAMERAS[m]))})")
            cams = [c for c in TEST_CAMERAS[m] if c in found]
            test[m] = attach_masks(cls._test_samples(root / folder, m, test_ids, cams), root, mask_root, "test")
            if not test[m]:
                raise DatasetError(f"{root / folder} holds no images of the ids in idx/test_id.txt")
        protocols = {}
        for q, g in (("visible", "infrared"), ("infrared", "visible")):
            name = f"{q}-to-{g}"
            protocols[name] = Protocol(name, test[q], test[g], cls._trials(test[g]),
                                       exclusion="same-id-same-camera", dedup_cmc=True,
                                       info={"sampler": "seeded", "shots": 1})
        return cls(str(root), tuple(FOLDERS), train, protocols, notes=notes, roles=ROLES)

    @staticmethod
    def _test_samples(folder: Path, modality: str, ids: Sequence[int], cams: Sequence[int]) -> list[Sample]:
        """Person-major, cameras in the given order, files sorted: the order the authors' code visits."""
        return [Sample(path, pid, cam, modality)
                for pid in ids for cam in cams for path in list_images(folder / f"cam{cam}" / f"{pid:04d}")]

    @staticmethod
    def _trials(pool: Sequence[Sample]) -> list:
        groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(pool):  # pool is in the authors' visiting order (see _test_samples)
            groups.setdefault((s.person_id, s.camera), []).append(i)
        return [seeded_gallery(list(groups.values()), t) for t in range(TRIALS)]
