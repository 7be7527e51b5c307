"""Loaders that yield training batches keyed by modality, and batched test-time image loading.

A training step draws, per modality, a P x K set of training indices from a sampler
(``reidkit.data.samplers``); one ``DataLoader`` loads the whole step (every modality) with its workers,
and the collate function splits it back into one :class:`~reidkit.method.ModalBatch` per modality.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from reidkit.data.image_cache import ImageCache
from reidkit.data.image_dataset import ImageDataset, load_image, load_image_cached
from reidkit.data.records import Sample
from reidkit.data.transforms import TestTransform
from reidkit.method import EpochPlan, ModalBatch
from reidkit.registry import SAMPLERS


class _ByModality(Dataset):
    """Items addressed as ``(modality, index)``: each modality has its own transforms."""

    def __init__(self, datasets: Mapping[str, ImageDataset]) -> None:
        self.datasets = dict(datasets)

    def __len__(self) -> int:  # pragma: no cover - not used with batch samplers
        return len(next(iter(self.datasets.values())))

    def __getitem__(self, key: tuple[str, int]) -> dict:
        modality, index = key
        item = self.datasets[modality][index]
        item["modality"] = modality
        return item


class _StepSampler:
    """Turns a P x K sampler's ``{modality: indices}`` steps into flat ``[(modality, index), ...]`` batches."""

    def __init__(self, sampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[tuple[str, int]]]:
        for step in self.sampler:
            yield [(m, int(i)) for m, idx in step.items() for i in idx]

    def __len__(self) -> int:
        return len(self.sampler)


class _Collate:
    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def __call__(self, items: list[dict]) -> dict[str, ModalBatch]:
        out: dict[str, ModalBatch] = {}
        for modality in dict.fromkeys(it["modality"] for it in items):
            part = [it for it in items if it["modality"] == modality]
            views = tuple(torch.stack([it["views"][v] for it in part]) for v in range(len(part[0]["views"])))
            index = torch.tensor([it["index"] for it in part], dtype=torch.int64)
            masks = None
            if part[0].get("mask") is not None:
                masks = torch.stack([it["mask"] for it in part])
            out[modality] = ModalBatch(
                images=views[0],
                views=views,
                labels=torch.from_numpy(self.labels[index.numpy()]),
                indices=index,
                cameras=torch.tensor([it["camera"] for it in part], dtype=torch.int64),
                masks=masks,
            )
        return out


def build_train_loader(
    train: Sequence[Sample],
    plan: EpochPlan,
    *,
    modalities: Sequence[str],
    views: Mapping[str, Sequence[Callable]],
    mask_transform: Callable | None,
    batch_size: int,
    instances: int,
    iterations: int,
    workers: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    cache: ImageCache | None = None,
) -> DataLoader:
    """The loader of one epoch: ``iterations`` steps of ``{modality: ModalBatch}``.

    Args:
        train: the training samples; ``plan.labels`` [N] gives their labels (-1 = not drawn) and
            ``plan.sampler`` names the registered sampler (``reidkit.samplers`` entry points).
        views: per modality, the transforms producing each view.
        seed: seeds the sampler; worker RNGs follow torch's global RNG (seeded per epoch by the engine).
        cache: decoded images kept across epochs (None: decode every read).
    """
    if len(plan.labels) != len(train):
        raise ValueError(f"EpochPlan.labels has {len(plan.labels)} entries for {len(train)} training samples")
    index = {m: i for i, m in enumerate(modalities)}
    modality_ids = np.fromiter((index[s.modality] for s in train), dtype=np.int64, count=len(train))
    sampler = SAMPLERS.get(plan.sampler)(
        plan.labels, modality_ids, list(modalities), batch_size=batch_size, instances=instances,
        iterations=iterations, seed=seed, rank=rank, world_size=world_size,
    )
    datasets = {m: ImageDataset(train, views[m], mask_transform=mask_transform, cache=cache) for m in modalities}
    return DataLoader(
        _ByModality(datasets),
        batch_sampler=_StepSampler(sampler),
        collate_fn=_Collate(plan.labels),
        num_workers=workers,
        persistent_workers=False,
        pin_memory=False,
    )


class _TestItems(Dataset):
    """Test-time items: normalised tensors, or resized uint8 arrays for a :class:`TestTransform` (the
    loader's collate normalises those in one batch), decoded once per run when a cache is given."""

    def __init__(self, samples: Sequence[Sample], transform: Callable, source: str,
                 cache: ImageCache | None = None) -> None:
        self.samples = samples
        self.transform = transform
        self.source = source
        self.cache = cache

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        sample = self.samples[i]
        path = sample.path if self.source == "image" else sample.mask_path
        if path is None:
            raise FileNotFoundError(f"{sample.path} has no shape mask (the method needs masks: see data.mask_root)")
        if not isinstance(self.transform, TestTransform):
            return self.transform(load_image_cached(path, self.cache))

        def load() -> np.ndarray:
            return self.transform.resized(load_image(path))

        return load() if self.cache is None else self.cache.get(path, load, tag=self.transform.size)


class _NormaliseBatch:
    def __init__(self, transform: TestTransform) -> None:
        self.transform = transform

    def __call__(self, arrays: list[np.ndarray]) -> torch.Tensor:
        return self.transform.normalise(torch.from_numpy(np.stack(arrays)))


def test_loader(samples: Sequence[Sample], transform: Callable, *, batch_size: int, workers: int,
                source: str = "image", cache: ImageCache | None = None) -> DataLoader:
    """Batches of test-time tensors in ``samples`` order (``source`` = image or mask); ``cache`` keeps the
    decoded images across calls (one per run)."""
    collate = _NormaliseBatch(transform) if isinstance(transform, TestTransform) else None
    return DataLoader(_TestItems(samples, transform, source, cache), batch_size=batch_size, shuffle=False,
                      num_workers=workers, collate_fn=collate)
