"""The ``generic`` dataset: any folder in reidkit's own layout.

::

    <root>/train/<modality>/<person_id>/<file>     file: c<camera>_<anything>.<png|jpg|jpeg|bmp>
    <root>/test/<modality>/<person_id>/<file>      (the c<camera>_ prefix is optional; camera 0 then)
    <root>/masks/<split>/<modality>/<person_id>/<file stem>.png      optional shape masks

Protocols: every ordered pair of modalities ``<q>-to-<g>`` (query = test/<q>, gallery = test/<g>,
same-identity-same-camera entries skipped). The synthetic generator writes this layout.

Modality roles come from the folder names (``reidkit.data.roles``): ``visible``, ``rgb``, ``vis``, ``color``
or ``colour`` carries colour. ``dataset_args.colour_modality`` names the colour folder when it is called
something else (or ``none`` when no modality carries colour).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidkit.config import option
from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.records import Sample
from reidkit.data.roles import COLOUR, OTHER, infer_roles

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_CAMERA = re.compile(r"^c(\d+)_")


def parse_person_id(name: str, folder: Path) -> int:
    try:
        return int(name)
    except ValueError:
        raise DatasetError(f"{folder}: person folders must be integers, found {name!r}") from None


def scan_split(root: Path, split: str, *, mask_root: Path | None = None) -> list[Sample]:
    """Samples of ``<root>/<split>/<modality>/<pid>/<file>``, sorted by path (deterministic)."""
    base = root / split
    if not base.is_dir():
        raise DatasetError(f"expected a folder {base} holding <modality>/<person_id>/<image> (generic layout)")
    masks = (mask_root or root / "masks") / split
    samples: list[Sample] = []
    for modality_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for person_dir in sorted(p for p in modality_dir.iterdir() if p.is_dir()):
            pid = parse_person_id(person_dir.name, modality_dir)
            for file in sorted(person_dir.iterdir()):
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                match = _CAMERA.match(file.name)
                camera = int(match.group(1)) if match else 0
                mask = masks / modality_dir.name / person_dir.name / f"{file.stem}.png"
                samples.append(Sample(str(file), pid, camera, modality_dir.name,
                                      str(mask) if mask.is_file() else None))
    return samples


def modality_pair_protocols(test: Sequence[Sample], modalities: Sequence[str]) -> dict[str, Protocol]:
    """The protocols of :func:`modality_protocols` for ``test`` split by modality (in ``modalities`` order)."""
    return modality_protocols({m: [s for s in test if s.modality == m] for m in modalities})


def modality_protocols(test: Mapping[str, Sequence[Sample]], *, exclusion: str = "same-id-same-camera",
                       info: Mapping[str, Any] | None = None) -> dict[str, Protocol]:
    """``<q>-to-<g>`` for every ordered pair of distinct modalities with images and, with three or more,
    ``<q>-to-<g1>+<g2>``: one query modality against the gallery of all the others together (IMSL's
    one-versus-the-other-two setting). Modality order is ``test``'s."""
    present = [m for m, samples in test.items() if samples]
    protocols = {}
    for q in present:
        others = [g for g in present if g != q]
        galleries = [(g, list(test[g])) for g in others]
        if len(others) >= 2:
            galleries.append(("+".join(others), [s for g in others for s in test[g]]))
        for g, gallery in galleries:
            name = f"{q}-to-{g}"
            protocols[name] = Protocol.single(name, list(test[q]), gallery, exclusion=exclusion,
                                              info=dict(info or {}))
    return protocols


def folder_roles(modalities: Sequence[str], colour_modality: str = "auto") -> dict[str, str]:
    """The roles of the modality folders: ``auto`` infers them from the names, ``none`` declares no colour
    modality, any other value names the colour folder."""
    if colour_modality == "auto":
        return infer_roles(modalities)
    if colour_modality == "none":
        return {m: OTHER if r == COLOUR else r for m, r in infer_roles(modalities).items()}
    if colour_modality not in modalities:
        raise DatasetError(f"dataset_args.colour_modality={colour_modality!r} names no modality folder; the "
                           f"modalities are {', '.join(modalities)}")
    return infer_roles(modalities, colour=colour_modality)


@dataclass(frozen=True)
class GenericConfig:
    """``dataset_args`` of the generic layout."""

    colour_modality: str = option("auto", help="the modality folder whose images carry colour: auto = the one "
                                               "named visible, rgb, vis, color or colour; none = no colour "
                                               "modality; or a folder name")


class GenericDataset(ReIDDataset):
    name = "generic"
    Config = GenericConfig

    @classmethod
    def from_config(cls, cfg: Any, args: GenericConfig | None = None) -> GenericDataset:
        if not cfg.root:
            raise DatasetError("data.root is required for the generic dataset (a folder with train/ and test/)")
        return cls.from_root(cfg.root, mask_root=cfg.mask_root, colour_modality=cls.options(args).colour_modality)

    @classmethod
    def write_example(cls, root: Path) -> Path:
        from reidkit.testing import make_tiny_dataset

        return make_tiny_dataset(Path(root) / "generic", ids=4, per_id=2, test_ids=2)

    @classmethod
    def from_root(cls, root: str | Path, *, mask_root: str | Path | None = None,
                  colour_modality: str = "auto") -> GenericDataset:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"dataset root {root} does not exist (expected train/ and test/ in it)")
        masks = Path(mask_root).expanduser() if mask_root else None
        train = scan_split(root, "train", mask_root=masks)
        test = scan_split(root, "test", mask_root=masks)
        if not train:
            raise DatasetError(f"{root / 'train'} holds no images (<modality>/<person_id>/<image>)")
        modalities = tuple(sorted({s.modality for s in train} | {s.modality for s in test}))
        for m in modalities:
            if not any(s.modality == m for s in train):
                raise DatasetError(f"{root / 'train' / m}: modality '{m}' has no training images")
        return cls(str(root), modalities, train, modality_pair_protocols(test, modalities),
                   roles=folder_roles(modalities, colour_modality))
