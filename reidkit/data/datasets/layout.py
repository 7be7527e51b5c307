"""Folder-layout helpers shared by the real-dataset modules (SYSU-MM01, LLCM, RegDB, RGBNT201): the
dataset root, official id lists, image listings and shape masks, and the tiny images their
``write_example`` copies hold."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.generic import IMAGE_SUFFIXES
from reidkit.data.records import Sample


def read_id_line(path: Path) -> list[int]:
    """Person ids of an official id list: one line of comma-separated integers."""
    if not path.is_file():
        raise DatasetError(f"missing id list {path}")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        return [int(tok) for tok in lines[0].split(",") if tok.strip()] if lines else []
    except ValueError:
        raise DatasetError(f"{path}: expected one line of comma-separated person ids") from None


def list_images(folder: Path) -> list[str]:
    """Image files directly in ``folder``, sorted by name (the official code sorts full paths)."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    base = str(folder)
    return sorted(os.path.join(base, n) for n in names if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES)


def attach_masks(samples: Sequence[Sample], root: Path, mask_root: str | Path | None,
                 split: str = "train") -> list[Sample]:
    """Samples with ``mask_path`` set to the first existing shape mask under ``mask_root``.

    Looked for, in order: ``<mask_root>/<image path relative to root, as .png>`` (a mirror of the dataset
    tree), ``<mask_root>/<split>/<modality>/<person_id>/<file stem>.png`` (reidkit's generic layout) and
    ``<mask_root>/<file stem>.png`` (IMSL's flat mask folder).
    """
    if not mask_root:
        return list(samples)
    masks = Path(mask_root).expanduser()
    out = []
    for s in samples:
        rel = Path(os.path.relpath(s.path, root)).with_suffix(".png")
        generic = masks / split / s.modality / str(s.person_id) / rel.name
        for candidate in (masks / rel, generic, masks / rel.name):
            if candidate.is_file():
                s = dataclasses.replace(s, mask_path=str(candidate))
                break
        out.append(s)
    return out


def resolve_root(root: str | None, name: str, markers: Iterable[str], layout: str,
                 subfolders: Iterable[str] = ()) -> Path:
    """The dataset folder: ``root`` itself or one of its ``subfolders``, the first holding a marker."""
    if not root:
        raise DatasetError(f"data.root is required for {name} (a folder with {layout})")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DatasetError(f"{name} root {base} does not exist; expected a folder with {layout}")
    markers = tuple(markers)
    for candidate in (base, *(base / sub for sub in subfolders)):
        if any((candidate / m).exists() for m in markers):
            return candidate
    raise DatasetError(f"{base} is not a {name} folder: expected {layout} (found: "
                       f"{', '.join(sorted(p.name for p in base.iterdir())[:8]) or 'nothing'})")


def write_image(path: Path, seed: int, size: tuple[int, int] = (16, 8)) -> None:
    """A tiny image at ``path`` (format from the suffix): a figure of a colour fixed by ``seed`` on a dark
    ground, so that identities differ. For the example layouts of the contract checks."""
    from PIL import Image

    h, w = size
    colour = tuple(40 + (seed * k * 37) % 200 for k in (3, 5, 7))
    image = Image.new("RGB", (w, h), (10, 10, 10))
    image.paste(colour, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
