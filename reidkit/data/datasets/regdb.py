"""RegDB in its official layout, with its two search directions (docs/datasets.md, "Protocols, exactly").

::

    <root>/Visible/<id>/<image>.bmp
    <root>/Thermal/<id>/<image>.bmp
    <root>/idx/{train,test}_{visible,thermal}_{1..10}.txt     lines: "<path relative to root> <label>"

412 identities, 10 visible + 10 thermal images each, from one co-located visible/thermal camera pair.
Ten 206 / 206 identity splits: ``dataset_args.trial`` (1-10) picks one, and **one model is trained per split**
(2,060 + 2,060 training images); the ten results are averaged outside reidkit's single run.
``visible-to-thermal``: the 2,060 visible test images query all 2,060 thermal test images;
``thermal-to-visible`` swaps them. No gallery sampling, no exclusion, plain (not deduplicated) CMC.
Person ids are the list files' labels; cameras are 1 (visible) and 2 (thermal).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidkit.config import option
from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.datasets.layout import attach_masks, resolve_root, write_image
from reidkit.data.records import Sample

MODALITIES = {"visible": 1, "thermal": 2}  # modality -> camera id
ROLES = {"visible": "colour", "thermal": "infrared"}
LAYOUT = "Visible/, Thermal/ and idx/{train,test}_{visible,thermal}_{1..10}.txt"


def read_labelled_list(path: Path, root: Path, modality: str, camera: int) -> list[Sample]:
    """Samples of a ``<relative path> <label>`` list file; every listed image must exist."""
    if not path.is_file():
        raise DatasetError(f"missing list file {path} (expected {LAYOUT})")
    samples, missing = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            rel, label = " ".join(parts[:-1]), int(parts[-1])
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{number}: expected '<image path> <label>', got {line!r}") from None
        image = root / rel
        if not image.is_file():
            missing.append(rel)
        samples.append(Sample(str(image), label, camera, modality))
    if missing:
        raise DatasetError(f"{path} lists {len(missing)} images that are not under {root}, "
                           f"e.g. {', '.join(missing[:3])}")
    return samples


@dataclass(frozen=True)
class RegDBConfig:
    """``dataset_args`` of RegDB."""

    trial: int = option(1, ge=1, le=10, help="which of the 10 official splits (one model per split)")


class RegDB(ReIDDataset):
    name = "regdb"
    Config = RegDBConfig
    official_counts = {
        "train": {"visible": {"images": 2060, "ids": 206}, "thermal": {"images": 2060, "ids": 206}},
        "protocols": {
            "visible-to-thermal": {"query": 2060, "gallery": 2060, "trials": 1},
            "thermal-to-visible": {"query": 2060, "gallery": 2060, "trials": 1},
        },
    }

    @classmethod
    def from_config(cls, cfg: Any, args: RegDBConfig | None = None) -> RegDB:
        root = resolve_root(cfg.root, "RegDB", ("idx",), LAYOUT, subfolders=("RegDB",))
        return cls.from_root(root, trial=cls.options(args).trial, mask_root=cfg.mask_root)

    @classmethod
    def write_example(cls, root: Path) -> Path:
        """Ids 0-3, two images per modality each; split 1 trains on 0-1 and tests on 2-3 (its lists only)."""
        root = Path(root) / "RegDB"
        for modality in MODALITIES:
            folder = modality.capitalize()
            for split, ids in (("train", (0, 1)), ("test", (2, 3))):
                lines = []
                for pid in ids:
                    for i in range(2):
                        write_image(root / folder / str(pid) / f"{modality[0]}_{pid}_{i}.bmp", pid)
                        lines.append(f"{folder}/{pid}/{modality[0]}_{pid}_{i}.bmp {pid}")
                (root / "idx").mkdir(exist_ok=True)
                (root / "idx" / f"{split}_{modality}_1.txt").write_text("\n".join(lines) + "\n")
        return root

    @classmethod
    def from_root(cls, root: Path, *, trial: int = 1, mask_root: str | None = None) -> RegDB:
        if not 1 <= trial <= 10:
            raise DatasetError(f"RegDB has splits 1-10, got dataset_args.trial={trial}")
        idx = root / "idx"

        def load(split: str, modality: str) -> list[Sample]:
            listing = idx / f"{split}_{modality}_{trial}.txt"
            listed = read_labelled_list(listing, root, modality, MODALITIES[modality])
            return attach_masks(listed, root, mask_root, split)

        train = load("train", "visible") + load("train", "thermal")
        test = {m: load("test", m) for m in MODALITIES}
        protocols = {
            f"{q}-to-{g}": Protocol.single(f"{q}-to-{g}", test[q], test[g], exclusion="none",
                                           info={"split": trial})
            for q, g in (("visible", "thermal"), ("thermal", "visible"))
        }
        absent = [t for t in range(1, 11) if not all((idx / f"{s}_{m}_{t}.txt").is_file()
                                                     for s in ("train", "test") for m in MODALITIES)]
        notes = [f"split {trial} of 10 (dataset_args.trial); one model per split"]
        if absent:
            notes.append(f"list files of splits {', '.join(map(str, absent))} are missing from {idx}")
        if {s.person_id for s in test["visible"]} != {s.person_id for s in test["thermal"]}:
            notes.append(f"split {trial}: the visible and thermal test lists hold different labels")
        return cls(str(root), tuple(MODALITIES), train, protocols, notes=notes, roles=ROLES)
