"""The images a backbone is pretrained on: a registered dataset's training split or a plain folder.

Self-supervised pretraining reads images only: identities, and any link between an image and its
counterpart in another modality, are dropped here (every ``Sample.person_id`` becomes -1). Supervised
pretraining keeps the identities of a labelled source dataset, relabelled 0..K-1.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from reidkit.config import DataConfig
from reidkit.data.datasets.base import DatasetError
from reidkit.data.image_dataset import load_image
from reidkit.data.records import Sample

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class Corpus:
    """The pretraining images and what the card records about them.

    Attributes:
        samples: the images (``person_id`` -1 unless the corpus is labelled).
        num_ids: identities of a labelled corpus (0 for an unlabeled one).
        info: ``{"dataset", "root", "split", "modalities", "images"}`` (and the synthetic world's preset
            and seed), for the weights' card.
    """

    samples: list[Sample]
    num_ids: int
    info: dict[str, Any]


def folder_corpus(folder: str | Path) -> Corpus:
    """Every image under ``folder`` (recursively, sorted); the first sub-folder names its modality.

    Raises :class:`DatasetError` when the folder does not exist or holds no image.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"no images in {root} (looked for {', '.join(IMAGE_SUFFIXES)} files, recursively)")
    samples = []
    for path in files:
        parts = path.relative_to(root).parts
        samples.append(Sample(str(path), -1, 0, parts[0] if len(parts) > 1 else "images"))
    modalities = sorted({s.modality for s in samples})
    return Corpus(samples, 0, {"dataset": "folder", "root": str(root), "split": None,
                               "modalities": modalities, "images": len(samples)})


def dataset_corpus(name: str, root: str | None = None, *, preset: str = "small", world_seed: int | None = None,
                   modalities: Sequence[str] = (), labelled: bool = False) -> Corpus:
    """The training split of registered dataset ``name`` (``root`` as ``data.root``), identities dropped
    unless ``labelled``. For ``synthetic`` without a root, ``preset`` generated with ``world_seed`` (a world
    of its own, cached like the benchmark presets; default 1000 for the ``pretrain-world*``
    presets, else 0). ``modalities`` keeps only those (all when empty)."""
    from reidkit.dataset_args import open_dataset

    info: dict[str, Any] = {"dataset": name, "root": root, "split": "train"}
    if name == "synthetic" and not root:
        from reidkit.data.synthetic import PRESETS, cached_root
        from reidkit.data.synthetic.presets import PRETRAIN_PRESETS, PRETRAIN_WORLD_SEED

        if preset not in PRESETS:
            raise DatasetError(f"unknown synthetic preset {preset!r}; known: {', '.join(PRESETS)}")
        seed = world_seed if world_seed is not None else (
            PRETRAIN_WORLD_SEED if preset in PRETRAIN_PRESETS else 0)
        root = str(cached_root(preset, seed=seed))
        info.update(preset=preset, world_seed=seed)
    dataset = open_dataset(DataConfig(dataset=name, root=root))  # synthetic: root is the preset's folder
    train = list(dataset.train)
    if modalities:
        unknown = sorted(set(modalities) - set(dataset.modalities))
        if unknown:
            raise DatasetError(f"{name} has no modality {', '.join(unknown)}; it has {list(dataset.modalities)}")
        train = [s for s in train if s.modality in set(modalities)]
    if not train:
        raise DatasetError(f"{name} at {dataset.root}: no training images")
    num_ids = 0
    if labelled:
        ids = {pid: i for i, pid in enumerate(sorted({s.person_id for s in train}))}
        train = [dataclasses.replace(s, person_id=ids[s.person_id]) for s in train]
        num_ids = len(ids)
    else:
        train = [dataclasses.replace(s, person_id=-1) for s in train]
    info.update(root=str(dataset.root), modalities=sorted({s.modality for s in train}), images=len(train))
    return Corpus(train, num_ids, info)


def drop_unreadable(corpus: Corpus) -> tuple[Corpus, list[dict[str, str]]]:
    """The corpus without images that cannot be decoded (``--on-bad-image skip``), and what was dropped."""
    from reidkit.data.validate import find_bad_images

    bad = find_bad_images(corpus.samples)
    if not bad:
        return corpus, []
    kept = [s for s in corpus.samples if s.path not in bad]
    if not kept:
        raise DatasetError(f"every one of the {len(corpus.samples)} images is unreadable")
    log.warning("skipping %d unreadable images (first: %s)", len(bad), next(iter(bad)))
    info = {**corpus.info, "images": len(kept), "skipped_images": len(bad)}
    return Corpus(kept, corpus.num_ids, info), [{"path": p, "reason": r} for p, r in bad.items()]


class CorpusImages(Dataset):
    """``dataset[i]`` = ``(uint8 [3, H, W] image resized to size, identity, modality index)``, the index into
    the sorted modality names of ``samples``; augmentation happens later, on whole batches
    (:mod:`reidkit.pretrain.augment`)."""

    def __init__(self, samples: Sequence[Sample], size: tuple[int, int]) -> None:
        self.samples = samples
        self.size = (int(size[0]), int(size[1]))
        self.modality_index = {m: i for i, m in enumerate(sorted({s.modality for s in samples}))}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        sample = self.samples[i]
        img = load_image(sample.path).resize((self.size[1], self.size[0]), Image.BILINEAR)
        data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        image = data.view(self.size[0], self.size[1], 3).permute(2, 0, 1).contiguous()
        return image, sample.person_id, self.modality_index[sample.modality]
