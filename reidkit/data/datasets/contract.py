"""The dataset contract, checked: what a dataset plugin must do for every method, protocol and command.

``reidkit.testing.check_dataset(cls, tmp_path)`` (re-exported there) has the class write a tiny copy of its
layout (``write_example``), loads it the way a run does (``data`` section plus ``dataset_args`` validated
against the class's ``Config``) and checks:

- the class: a :class:`~reidkit.data.datasets.base.ReIDDataset` with its registry ``name``, a frozen
  ``Config`` whose every field has a default and which survives the config round trip, ``from_config``;
- the modalities and their roles: distinct names, a known role each, at most one colour modality;
- the training split: readable images of every modality, integer identities and cameras, existing masks,
  and one P x K training step through the registered sampler;
- the protocols: named as keyed, registered exclusion rules, trials that index the gallery pool, queries
  and galleries of the dataset's modalities, and scores in [0, 1] from random features;
- the ``data check`` report (plain JSON) and a second load that gives the same lists in the same order.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reidkit.data.datasets.base import Protocol, ReIDDataset
from reidkit.data.roles import COLOUR, ROLES

#: training images per modality whose files the check opens (all of a tiny example's)
IMAGES_OPENED = 16


def check_dataset_class(cls: type) -> None:
    """The class attributes of the contract; raises AssertionError naming the breach."""
    from reidkit.config import build, to_dict

    assert isinstance(cls, type) and issubclass(cls, ReIDDataset), f"{cls} must subclass ReIDDataset"
    assert isinstance(cls.name, str) and cls.name, f"{cls.__name__}.name must be its registry name"
    assert dataclasses.is_dataclass(cls.Config), f"{cls.__name__}.Config must be a dataclass"
    assert cls.Config.__dataclass_params__.frozen, f"{cls.__name__}.Config must be frozen"
    defaults = cls.Config()  # every field has a default
    again = build(cls.Config, to_dict(defaults), "dataset_args")
    assert again == defaults, f"{cls.__name__}.Config does not survive the config round trip (dump, load)"
    assert cls.from_config.__func__ is not ReIDDataset.from_config.__func__, f"{cls.__name__} must implement from_config"
    assert isinstance(cls.official_counts, Mapping), "official_counts must be a mapping"


def _check_modalities(dataset: ReIDDataset, where: str) -> None:
    mods = dataset.modalities
    assert isinstance(mods, tuple) and mods, f"{where}: modalities must be a non-empty tuple"
    assert all(isinstance(m, str) and m for m in mods), f"{where}: modality names are non-empty strings"
    assert len(set(mods)) == len(mods), f"{where}: modality names repeat: {mods}"
    assert set(dataset.roles) == set(mods), f"{where}: roles {dataset.roles} do not name every modality {mods}"
    assert all(r in ROLES for r in dataset.roles.values()), f"{where}: roles must be among {ROLES}"
    assert sum(r == COLOUR for r in dataset.roles.values()) <= 1, f"{where}: at most one colour modality"


def _check_train(dataset: ReIDDataset, where: str) -> None:
    from reidkit.data.image_dataset import load_image

    assert dataset.train, f"{where}: the training split is empty"
    for m in dataset.modalities:
        samples = [s for s in dataset.train if s.modality == m]
        assert samples, f"{where}: modality '{m}' has no training images (a P x K step draws from each)"
        for s in samples[:IMAGES_OPENED]:
            assert isinstance(s.person_id, int) and isinstance(s.camera, int), f"{s}: integer ids and cameras"
            assert load_image(s.path).size[0] > 0, f"{s.path} is not a readable image"
            assert s.mask_path is None or Path(s.mask_path).is_file(), f"{s.mask_path}: mask file missing"
    assert isinstance(dataset.num_train_ids, int) and dataset.num_train_ids > 0, "num_train_ids must be > 0"


def _check_loader(dataset: ReIDDataset) -> None:
    """One P x K step with identities as labels through the real loader (and the registered sampler)."""
    from reidkit.data.loaders import build_train_loader
    from reidkit.data.transforms import test_transform
    from reidkit.method import EpochPlan

    ids = {pid: i for i, pid in enumerate(sorted({s.person_id for s in dataset.train}))}
    plan = EpochPlan(labels=np.array([ids[s.person_id] for s in dataset.train]), sampler="per-modality")
    views = {m: [test_transform((32, 16))] for m in dataset.modalities}
    loader = build_train_loader(dataset.train, plan, modalities=dataset.modalities, views=views,
                                mask_transform=None, batch_size=4, instances=2, iterations=1, workers=0, seed=0)
    batch = next(iter(loader))
    assert set(batch) == set(dataset.modalities), "a training step holds every modality"
    assert all(b.images.shape[1:] == (3, 32, 16) for b in batch.values()), "images load as [3, H, W]"


def _check_protocols(dataset: ReIDDataset, where: str) -> None:
    from reidkit.evaluation import evaluate

    protocols = dataset.protocols
    assert isinstance(protocols, Mapping) and protocols, f"{where}: a dataset needs at least one protocol"
    gen = torch.Generator().manual_seed(0)
    features: dict[str, torch.Tensor] = {}

    def random_features(samples):
        for s in samples:
            if s.path not in features:
                features[s.path] = torch.nn.functional.normalize(torch.randn(8, generator=gen), dim=0)
        return torch.stack([features[s.path] for s in samples])

    for name, p in protocols.items():
        assert isinstance(p, Protocol) and p.name == name, f"protocol '{name}' must be a Protocol of that name"
        assert p.query and p.gallery_pool, f"protocol '{name}': empty query or gallery"
        for t in p.trials:
            assert len(t) and t.min() >= 0 and t.max() < len(p.gallery_pool), \
                f"protocol '{name}': a trial indexes outside the gallery pool"
        used = {s.modality for s in p.query} | {s.modality for s in p.gallery_pool}
        assert used <= set(dataset.modalities), f"protocol '{name}' uses modalities {sorted(used)}"
        scores = evaluate(random_features, p)
        for key in ("rank1", "mAP", "mINP"):
            assert 0.0 <= scores[key] <= 1.0, f"protocol '{name}': {key} = {scores[key]} is not a fraction"


def check_dataset(cls: type, tmp_path: str | Path, *, root: str | Path | None = None,
                  args: Mapping[str, Any] | None = None) -> ReIDDataset:
    """Run every contract check on the dataset class ``cls``; returns the dataset it loaded.

    ``root``: a folder in the dataset's layout (default: what ``cls.write_example`` writes under
    ``tmp_path``); ``args``: its ``dataset_args`` (validated against ``cls.Config``). Raises AssertionError
    naming the breach (and the dataset's own errors when it cannot load the folder).
    """
    from reidkit.config import DataConfig
    from reidkit.dataset_args import build_dataset_args

    check_dataset_class(cls)
    if root is None:
        root = cls.write_example(Path(tmp_path) / "example")
        assert root is not None and Path(root).exists(), f"{cls.__name__}.write_example must return its folder"
    data = DataConfig(dataset=cls.name, root=str(root), workers=0)
    options = build_dataset_args(cls.name, dict(args or {}), cls.Config)
    dataset = cls.from_config(data, options)
    where = f"{cls.__name__} at {root}"
    assert isinstance(dataset, ReIDDataset), f"{cls.__name__}.from_config must return a ReIDDataset"
    _check_modalities(dataset, where)
    _check_train(dataset, where)
    _check_loader(dataset)
    _check_protocols(dataset, where)
    report = dataset.check_report()
    assert {"dataset", "root", "train", "protocols"} <= set(report), "check_report misses a section"
    json.dumps(report)  # reidkit data check --json prints it
    again = cls.from_config(data, options)
    assert [s.path for s in again.train] == [s.path for s in dataset.train], "loading is not deterministic"
    assert {n: [s.path for s in p.query] for n, p in again.protocols.items()} == \
        {n: [s.path for s in p.query] for n, p in dataset.protocols.items()}, "protocols are not deterministic"
    return dataset
