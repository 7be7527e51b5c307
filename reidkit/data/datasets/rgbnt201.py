"""RGBNT201 (aligned RGB / near-infrared / thermal triplets; Zheng et al., "Robust Multi-Modality Person
Re-identification", AAAI 2021) in either of its two layouts.

Original release (what the multi-modality papers' loaders read, e.g. github.com/924973292/TOP-ReID)::

    <root>/train_171/{RGB,NI,TI}/<6-digit pid>_cam<k>_<...>.jpg     (``train/`` accepted too)
    <root>/test/{RGB,NI,TI}/<6-digit pid>_cam<k>_<...>.jpg

IMSL's renamed layout (github.com/zqpang/IMSL reads it; the camera slot holds the *modality*: c1 RGB,
c2 NI, c3 TI)::

    <root>/train_rgb/, train_ni/, train_ti/        (or a mixed train/, split by the c tag)
    <root>/test_rgb/, test_ni/ [, test_ti/]        files <pid>_c<m>_<...>.jpg; pid -1 = junk, skipped

Modalities ``visible`` (RGB), ``nir`` (NI), ``tir`` (TI). Camera ids are kept as the files give them: the
physical view (1-4) in the original release, the modality code (1-3) in IMSL's layout. Protocols: the six
directed pairs ``<q>-to-<g>`` and the three one-versus-the-other-two settings ``<q>-to-<g1>+<g2>``; query
and gallery are whole test folders (one trial); plain CMC.

``dataset_args.exclude_aligned_twin`` (held against the official code; docs/datasets.md):

- false (default, exclusion ``none``): IMSL's evaluation, which is ``visible-to-nir`` on its layout. IMSL
  skips the query's identity *and* camera, but its camera slot is the modality, so nothing is skipped
  across modalities and each query's aligned twin stays in the gallery. Lists equal; CMC and mAP equal
  unless distances tie (IMSL ranks with the unstable ``np.argsort`` over file-system order and scores AP
  with sklearn's tie-grouping ``average_precision_score``; reidkit ranks ties by its sorted order).
- true (exclusion ``aligned-twin``): a query skips its own capture in every gallery modality and nothing
  else. The multi-modality papers (fused triplets, query = gallery = ``test/``) skip the same identity and
  physical camera; their triplets are exactly this module's per-modality lists of the original layout, and
  the twin rule is the part of their rule that carries over to a cross-modal pair without the camera part
  (the person's other captures by the same camera stay in the gallery).
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from reidkit.config import option
from reidkit.data.datasets.base import DatasetError, ReIDDataset
from reidkit.data.datasets.generic import IMAGE_SUFFIXES, modality_protocols
from reidkit.data.datasets.layout import attach_masks, resolve_root, write_image
from reidkit.data.records import Sample

MODALITIES = ("visible", "nir", "tir")
ROLES = {"visible": "colour", "nir": "infrared", "tir": "infrared"}
ORIGINAL_FOLDERS = {"visible": "RGB", "nir": "NI", "tir": "TI"}
IMSL_FOLDERS = {"visible": "rgb", "nir": "ni", "tir": "ti"}
IMSL_CODES = {1: "visible", 2: "nir", 3: "tir"}
LAYOUT = ("train_171/{RGB,NI,TI}/ and test/{RGB,NI,TI}/ (original release), or train_rgb/, train_ni/, "
          "train_ti/, test_rgb/, test_ni/ (IMSL's renamed layout)")
_ORIGINAL_NAME = re.compile(r"^(-?\d+)(?:_cam(\d+))?")
_IMSL_NAME = re.compile(r"^(-?\d+)_c(\d)")


def image_files(folder: Path) -> list[Path]:
    """Images anywhere under ``folder``, sorted by path."""
    found = []
    for dirpath, _, names in os.walk(folder):
        found += [Path(dirpath) / n for n in names if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES]
    return sorted(found)


def original_samples(folder: Path, modality: str) -> list[Sample]:
    samples = []
    for path in image_files(folder):
        match = _ORIGINAL_NAME.match(path.name)
        if not match:
            raise DatasetError(f"{path}: expected a name <pid>_cam<k>_... (RGBNT201 original release)")
        samples.append(Sample(str(path), int(match.group(1)), int(match.group(2) or 0), modality))
    return samples


def imsl_samples(folder: Path, modality: str | None = None) -> list[Sample]:
    """Samples of an IMSL folder; ``modality`` None = read it from each file's c tag (the mixed train/)."""
    samples = []
    for path in image_files(folder):
        match = _IMSL_NAME.match(path.name)
        if not match or int(match.group(2)) not in IMSL_CODES:
            raise DatasetError(f"{path}: expected a name <pid>_c<m>_... with m in 1-3 (IMSL's layout)")
        pid, code = int(match.group(1)), int(match.group(2))
        if pid == -1:
            continue
        if modality is not None and IMSL_CODES[code] != modality:
            raise DatasetError(f"{path}: the c{code} tag says {IMSL_CODES[code]}, the folder says {modality}")
        samples.append(Sample(str(path), pid, code, IMSL_CODES[code]))
    return samples


@dataclass(frozen=True)
class RGBNT201Config:
    """``dataset_args`` of RGBNT201."""

    exclude_aligned_twin: bool = option(False, help="a query skips its own aligned capture in the other "
                                                    "modalities (the official code keeps it)")


class RGBNT201(ReIDDataset):
    name = "rgbnt201"
    Config = RGBNT201Config
    official_counts: ClassVar[dict[str, Any]] = {  # 171 training / 30 test identities (train_171); image counts not verified
        "train": {m: {"ids": 171} for m in MODALITIES},
    }

    @classmethod
    def from_config(cls, cfg: Any, args: RGBNT201Config | None = None) -> RGBNT201:
        root = resolve_root(cfg.root, "RGBNT201", ("test", "test_rgb"), LAYOUT,
                            subfolders=("RGBNT201", "rgbnt201"))
        return cls.from_root(root, exclude_aligned_twin=cls.options(args).exclude_aligned_twin,
                             mask_root=cfg.mask_root)

    @classmethod
    def write_example(cls, root: Path) -> Path:
        """The original release's layout: training ids 10-11, test ids 1-2, two aligned captures each."""
        root = Path(root) / "RGBNT201"
        for split, ids in (("train_171", (10, 11)), ("test", (1, 2))):
            for folder in ORIGINAL_FOLDERS.values():
                for pid in ids:
                    for cam in (1, 2):
                        write_image(root / split / folder / f"{pid:06d}_cam{cam}_{pid:04d}.jpg", pid)
        return root

    @classmethod
    def from_root(cls, root: Path, *, exclude_aligned_twin: bool = False,
                  mask_root: str | None = None) -> RGBNT201:
        if (root / "test_rgb").is_dir():
            layout, train, test = "imsl", *cls._imsl(root)
        else:
            layout, train, test = "original", *cls._original(root)
        masks = mask_root or (root / "mask" if (root / "mask").is_dir() else None)
        train = attach_masks(train, root, masks)
        test = {m: attach_masks(s, root, masks, "test") for m, s in test.items()}
        if not train:
            raise DatasetError(f"{root}: no training images (expected {LAYOUT})")
        exclusion = "aligned-twin" if exclude_aligned_twin else "none"
        info = {"layout": layout, "aligned_twin": "excluded" if exclude_aligned_twin else "kept"}
        protocols = modality_protocols({m: test.get(m, []) for m in MODALITIES}, exclusion=exclusion,
                                       info=info)
        if not protocols:
            raise DatasetError(f"{root}: the test split needs images of two modalities or more ({LAYOUT})")
        modalities = tuple(m for m in MODALITIES if any(s.modality == m for s in train) or test.get(m))
        camera_note = " (camera ids are the modality codes 1-3)" if layout == "imsl" else ""
        twin = f"dataset_args.exclude_aligned_twin={exclude_aligned_twin}"
        notes = [f"layout: {layout}{camera_note}", f"aligned twins {info['aligned_twin']} ({twin})"]
        absent = [m for m in MODALITIES if not test.get(m)]
        if absent:
            notes.append(f"no test images for {', '.join(absent)}: protocols with it are not available")
        return cls(str(root), modalities, train, protocols, notes=notes,
                   roles={m: ROLES[m] for m in modalities})

    @staticmethod
    def _original(root: Path) -> tuple[list[Sample], dict[str, list[Sample]]]:
        train_dir = next((root / d for d in ("train_171", "train") if (root / d).is_dir()), None)
        if train_dir is None or not (root / "test").is_dir():
            raise DatasetError(f"{root}: expected {LAYOUT}")
        train = [s for m, f in ORIGINAL_FOLDERS.items() for s in original_samples(train_dir / f, m)]
        test = {m: original_samples(root / "test" / f, m) for m, f in ORIGINAL_FOLDERS.items()}
        return train, test

    @staticmethod
    def _imsl(root: Path) -> tuple[list[Sample], dict[str, list[Sample]]]:
        split: Sequence[Path] = [root / f"train_{f}" for f in IMSL_FOLDERS.values()]
        if any(p.is_dir() for p in split):
            train = [s for m, f in IMSL_FOLDERS.items() for s in imsl_samples(root / f"train_{f}", m)]
        elif (root / "train").is_dir():
            mixed = imsl_samples(root / "train")
            train = [s for m in MODALITIES for s in mixed if s.modality == m]
        else:
            raise DatasetError(f"{root}: expected train_rgb/, train_ni/, train_ti/ or train/ (IMSL's layout)")
        test = {m: imsl_samples(root / f"test_{f}", m) for m, f in IMSL_FOLDERS.items()}
        return train, test
