"""Shape masks for a dataset's training images (``reidkit data masks``): where each goes, how it is stored,
and a resumable writer.

Layout: one PNG per training image at ``<output>/<image path relative to the dataset root>`` with the suffix
``.png``, the first place :func:`reidkit.data.datasets.layout.attach_masks` looks (and, for the generic and
synthetic layouts, exactly ``<output>/train/<modality>/<person_id>/<file stem>.png``, where their loader
looks), so ``data.mask_root=<output>`` finds every mask. Format: a two-colour palette PNG of the image's
size, index 0 = background (black), 1 = person (white). ``np.array(Image.open(p))`` gives 0/1, and
``convert("RGB")`` (what the training loader does) gives white on black, as IMSL's built-in silhouette.

Resuming: each mask is written to a temporary name and renamed into place, so a file under its final name
is always complete, and a rerun skips it. ``<output>/masks.json`` records, per modality, the source and its
options; a rerun with another source or other options for a modality that has masks fails instead of mixing
two kinds of mask in one modality. Different modalities may come from different sources (``--modality``),
e.g. a segmenter for the colour images and the silhouette for infrared ones.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reidkit.data.datasets.base import DatasetError
from reidkit.data.records import Sample
from reidkit.engine.checkpoint import atomic_write, write_json

MANIFEST = "masks.json"
#: palette of the written masks: index 0 background, index 1 person
PALETTE = (0, 0, 0, 255, 255, 255)


class MaskError(DatasetError):
    """A mask request that cannot be served (bad output folder, missing source, unusable checkpoint); the
    message says what to do. A :class:`DatasetError`, so the CLI prints it as one ``error:`` line."""


@dataclass(frozen=True)
class MaskSummary:
    """What :func:`write_masks` did: ``written`` new masks, ``skipped`` already there, of ``total``."""

    output: Path
    total: int
    written: int
    skipped: int


def mask_file(sample: Sample, root: str | Path, output: str | Path) -> Path:
    """Where the mask of ``sample`` goes: ``<output>/<sample.path relative to root>`` as ``.png``.

    Raises :class:`MaskError` when the image lies outside ``root`` (its mask would land outside ``output``).
    """
    rel = Path(os.path.relpath(os.path.abspath(sample.path), os.path.abspath(root)))
    if rel.is_absolute() or rel.parts[:1] == ("..",):
        raise MaskError(f"{sample.path} lies outside the dataset root {root}; cannot mirror it under the output")
    return Path(output) / rel.with_suffix(".png")


def save_mask(person: np.ndarray, path: str | Path) -> None:
    """Write a [H, W] person mask (bool, or any array where nonzero = person) atomically as a palette PNG."""
    path = Path(path)
    data = np.ascontiguousarray(np.asarray(person) != 0, dtype=np.uint8)
    img = Image.frombytes("P", (data.shape[1], data.shape[0]), data.tobytes())
    img.putpalette(list(PALETTE) + [0] * (768 - len(PALETTE)))
    atomic_write(path, lambda f: img.save(f, format="PNG", optimize=False, compress_level=6), fsync=False)


def person_region(path: str | Path) -> np.ndarray:
    """[H, W] bool person region of any mask file: a palette or grey-level PNG is person where its value is
    nonzero (our masks, the synthetic part maps, parser label maps); an RGB one where any channel is."""
    with Image.open(path) as img:
        img.load()
        data = np.asarray(img if img.mode in ("P", "L", "1", "I", "I;16") else img.convert("RGB"))
    return data.reshape(data.shape[0], data.shape[1], -1).any(axis=2)


def source_entry(source: Any) -> dict[str, Any]:
    """What ``masks.json`` records of the source of one modality's masks: ``{"source", "options"}``."""
    return {"source": source.name, "options": source.describe()}


def read_manifest(output: Path) -> dict[str, Any]:
    """``<output>/masks.json`` as a dict (empty when absent)."""
    path = output / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise MaskError(f"{path} is unreadable ({e}); remove it or use --overwrite") from None


def check_manifest(output: Path, entry: dict[str, Any], modalities: Iterable[str], *,
                   overwrite: bool = False) -> None:
    """Fail unless ``output`` is a folder (or absent) whose masks of ``modalities`` came from the same source
    with the same options (``entry``: :func:`source_entry`). Other modalities may hold other sources'."""
    if output.exists() and not output.is_dir():
        raise MaskError(f"--output {output} is a file; give a folder")
    if overwrite:
        return
    before = read_manifest(output).get("modalities", {})
    for m in sorted(set(modalities)):
        old = before.get(m)
        if old is None:
            continue
        if old.get("source") != entry["source"]:
            raise MaskError(f"{output} holds {m} masks from source {old.get('source')!r}, not {entry['source']!r}: "
                            f"choose another --output, or --overwrite to replace them")
        if old.get("options") != entry["options"]:
            raise MaskError(f"{output} holds {m} {entry['source']} masks made with other options "
                            f"({old.get('options')}): choose another --output, or --overwrite to replace them")


def update_manifest(output: Path, record: dict[str, Any], entries: dict[str, dict[str, Any]]) -> None:
    """Write ``masks.json``: ``record`` (dataset, root), the layout, and per modality its source entry."""
    output.mkdir(parents=True, exist_ok=True)
    doc = read_manifest(output)
    doc.update(record, layout="<image path relative to the dataset root>.png",
               format="palette PNG: 0 background, 1 person")
    doc["modalities"] = {**doc.get("modalities", {}), **entries}
    write_json(output / MANIFEST, doc)


def write_masks(samples: Sequence[Sample], root: str | Path, output: str | Path, source: Any, *,
                record: dict[str, Any] | None = None, overwrite: bool = False,
                progress: Callable[[int], None] | None = None) -> MaskSummary:
    """Write the mask of every sample that has none yet under ``output`` (all of them with ``overwrite``).

    Args:
        samples: the images (a dataset's training split).
        root: the dataset root the images' paths are mirrored from (``ReIDDataset.root``).
        output: the mask folder (created).
        source: a mask source (:mod:`reidkit.data.masks_sources`): ``source(images)`` maps a list of RGB PIL
            images to one [H, W] bool person mask each, at the image's size; ``source.batch_size`` images
            are passed at a time; ``source.describe()`` gives the options recorded in the manifest.
        record: fields for ``masks.json`` (dataset name and root).
        progress: called with the number of images done (written or skipped) after each batch.
    """
    from reidkit.data.image_dataset import load_image

    output = Path(output).expanduser()
    entry = source_entry(source)
    counts = Counter(s.modality for s in samples)
    check_manifest(output, entry, counts, overwrite=overwrite)
    targets = [(s, mask_file(s, root, output)) for s in samples]
    todo = targets if overwrite else [(s, f) for s, f in targets if not f.is_file()]
    skipped = len(targets) - len(todo)
    update_manifest(output, record or {}, {m: {**entry, "images": n} for m, n in sorted(counts.items())})
    if progress is not None and skipped:
        progress(skipped)
    batch = max(1, int(getattr(source, "batch_size", 1)))
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        images = [load_image(s.path) for s, _ in chunk]
        masks = source(images)
        for (sample, target), image, person in zip(chunk, images, masks):
            if person.shape != (image.height, image.width):
                raise MaskError(f"source {source.name} gave a {tuple(person.shape)} mask for the "
                                f"{image.height}x{image.width} image {sample.path}")
            save_mask(person, target)
        if progress is not None:
            progress(len(chunk))
    return MaskSummary(output, len(targets), len(todo), skipped)
