"""An example reidkit dataset plugin: ``csv``, images listed in one CSV file.

::

    <root>/images.csv      header: path,person_id,camera,modality,split
                           path relative to <root>; split: train, query or gallery

The modalities are the names the CSV uses; ``dataset_args.colour_modality`` (default ``rgb``) says which one
carries colour, the others are infrared. Protocols: ``<q>-to-<g>`` for every query modality q and every other
gallery modality g, with the exclusion rule ``dataset_args.exclusion``: by default this plugin's own
``same-camera`` (a query skips every gallery image of its own camera, e.g. for RGB-infrared cameras that
film both modalities), registered under the ``reidkit.exclusions`` entry points in pyproject.toml.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reidkit.config import option
from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.records import Sample

COLUMNS = ("path", "person_id", "camera", "modality", "split")
SPLITS = ("train", "query", "gallery")


@dataclass(frozen=True)
class CSVConfig:
    """``dataset_args`` of the ``csv`` dataset: every field has a default and a help text."""

    list_file: str = option("images.csv", help="the CSV file listing the images, relative to data.root")
    colour_modality: str = option("rgb", help="the modality whose images carry colour ('' = none)")
    exclusion: str = option("same-camera", help="which gallery entries a query skips (reidkit list exclusions)")


def same_camera(query: Sequence[Sample], gallery: Sequence[Sample]) -> np.ndarray:
    """The plugin's exclusion rule: bool [Q, G], True where the gallery image comes from the query's camera."""
    q = np.array([s.camera for s in query], dtype=np.int64)
    g = np.array([s.camera for s in gallery], dtype=np.int64)
    return q[:, None] == g[None, :]


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"missing list file {path} (expected a CSV with columns {', '.join(COLUMNS)})")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(COLUMNS) - set(rows[0]):
        raise DatasetError(f"{path}: expected the columns {', '.join(COLUMNS)}")
    return rows


class CSVDataset(ReIDDataset):
    name = "csv"
    Config = CSVConfig

    @classmethod
    def from_config(cls, cfg, args: CSVConfig | None = None) -> CSVDataset:
        args = cls.options(args)  # the defaults when called without options
        if not cfg.root:
            raise DatasetError("data.root is required for the csv dataset (the folder holding the CSV file)")
        root = Path(cfg.root).expanduser()
        splits: dict[str, list[Sample]] = {s: [] for s in SPLITS}
        for number, row in enumerate(read_rows(root / args.list_file), start=2):
            if row["split"] not in splits:
                raise DatasetError(f"{args.list_file}:{number}: split must be one of {', '.join(SPLITS)}")
            try:
                sample = Sample(str(root / row["path"]), int(row["person_id"]), int(row["camera"]), row["modality"])
            except ValueError:
                raise DatasetError(f"{args.list_file}:{number}: person_id and camera must be integers") from None
            splits[row["split"]].append(sample)
        modalities = tuple(dict.fromkeys(s.modality for s in splits["train"]))
        if args.colour_modality and args.colour_modality not in modalities:
            raise DatasetError(f"dataset_args.colour_modality={args.colour_modality!r}: the CSV's modalities "
                               f"are {', '.join(modalities)}")
        roles = {m: "colour" if m == args.colour_modality else "infrared" for m in modalities}
        protocols = {}
        for q in modalities:
            for g in modalities:
                query = [s for s in splits["query"] if s.modality == q]
                gallery = [s for s in splits["gallery"] if s.modality == g]
                if q != g and query and gallery:
                    protocols[f"{q}-to-{g}"] = Protocol.single(f"{q}-to-{g}", query, gallery,
                                                               exclusion=args.exclusion)
        if not protocols:
            raise DatasetError(f"{root / args.list_file}: no query and gallery images of two modalities")
        return cls(str(root), modalities, splits["train"], protocols, roles=roles,
                   notes=[f"exclusion rule: {args.exclusion}"])

    @classmethod
    def write_example(cls, root: Path) -> Path:
        """Four training and two test identities, seen by cameras 1 and 2 in both ``rgb`` and ``ir``."""
        from PIL import Image

        root = Path(root) / "csv-example"
        rows = [",".join(COLUMNS)]
        for pid in range(6):
            colour = (40 + 35 * pid, 200 - 25 * pid, 90 + 20 * pid)
            for modality in ("rgb", "ir"):
                for camera in (1, 2):
                    split = "train" if pid < 4 else ("query" if camera == 1 else "gallery")
                    path = Path("images") / modality / f"{pid}_{camera}.png"
                    (root / path.parent).mkdir(parents=True, exist_ok=True)
                    fill = colour if modality == "rgb" else (sum(colour) // 3,) * 3
                    image = Image.new("RGB", (16, 32), (10, 10, 10))
                    image.paste(fill, (4, 8, 12, 24))
                    image.save(root / path)
                    rows.append(f"{path.as_posix()},{pid},{camera},{modality},{split}")
        (root / "images.csv").write_text("\n".join(rows) + "\n")
        return root
