"""Method contract checks, reusable by third-party plugins.

In a plugin's own tests::

    from reidkit.testing import check_method

    def test_contract(tmp_path):
        check_method(MyMethod, tmp_path)

``check_method`` writes a tiny dataset in the generic layout (random person-like images, masks), builds
the method, and checks the contract of ``reidkit/method.py``: the class attributes, ``prepare_epoch``
returning a valid :class:`~reidkit.method.EpochPlan`, named finite losses whose gradients reach the
parameters, ``embed`` shapes and normalisation, the label rule for unsupervised methods, a state-dict round
trip, and a one-epoch fit through the real engine.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reidkit.config import DataConfig, resolve
from reidkit.method import EpochContext, EpochPlan, LabelLeakError, Method

TINY_OVERRIDES = (
    "data.dataset=generic", "data.height=32", "data.width=16", "data.batch_size=8", "data.instances=2",
    "data.workers=0", "model.backbone=resnet-mini", "optim.epochs=1", "optim.iterations=2",
    "eval.batch_size=16",
)


def make_tiny_dataset(root: str | Path, *, modalities: Sequence[str] = ("visible", "infrared"), ids: int = 6,
                      per_id: int = 4, test_ids: int = 3, size: tuple[int, int] = (32, 16), seed: int = 0) -> Path:
    """Write a tiny dataset in the generic layout: each identity a coloured figure, each modality a look.

    Cameras are disjoint per modality (modality k uses cameras 2k+1, 2k+2). Every image has a mask.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    h, w = size
    for split, pids in (("train", range(ids)), ("test", range(ids, ids + test_ids))):
        for pid in pids:
            colour = rng.integers(40, 255, size=3)
            for k, modality in enumerate(modalities):
                folder = root / split / modality / str(pid)
                mask_folder = root / "masks" / split / modality / str(pid)
                folder.mkdir(parents=True, exist_ok=True)
                mask_folder.mkdir(parents=True, exist_ok=True)
                for n in range(per_id):
                    img = rng.integers(0, 60, size=(h, w, 3)).astype(np.uint8)
                    top, left = rng.integers(0, h // 4), rng.integers(0, w // 4)
                    body = colour if k == 0 else np.full(3, colour.mean() * (0.6 + 0.2 * k))
                    img[top:top + h // 2 + 4, left:left + w // 2 + 2] = body.astype(np.uint8)
                    mask = np.zeros((h, w, 3), dtype=np.uint8)
                    mask[top:top + h // 2 + 4, left:left + w // 2 + 2] = 255
                    name = f"c{2 * k + 1 + n % 2}_{pid:04d}_{n:02d}"
                    Image.fromarray(img).save(folder / f"{name}.png")
                    Image.fromarray(mask).save(mask_folder / f"{name}.png")
    return root


def check_class_attributes(cls: type[Method]) -> None:
    assert issubclass(cls, Method), f"{cls} must subclass reidkit.Method"
    assert isinstance(cls.name, str) and cls.name, f"{cls.__name__}.name must be its registry name"
    assert isinstance(cls.uses_labels, bool), f"{cls.__name__}.uses_labels must be a bool"
    if cls.Config is not type(None):
        assert dataclasses.is_dataclass(cls.Config), f"{cls.__name__}.Config must be a dataclass"
        assert cls.Config.__dataclass_params__.frozen, f"{cls.__name__}.Config must be frozen"
        cls.Config()  # every field has a default
    for hook in ("prepare_epoch", "training_step"):
        assert getattr(cls, hook) is not getattr(Method, hook), f"{cls.__name__} must implement {hook}"


def tiny_config(cls: type[Method], root: Path, overrides: Sequence[str] = ()):
    return resolve(cls.name, overrides=[*TINY_OVERRIDES, f"data.root={root}", *overrides],
                   method_defaults=cls.run_defaults, method_config=cls.Config)


def check_method(cls: type[Method], tmp_path: str | Path, *, modalities: Sequence[str] = ("visible", "infrared"),
                 overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run every contract check on ``cls``; returns the tiny run's results. Raises AssertionError on a breach."""
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.engine.run import build_method_from
    from reidkit.engine.trainer import Trainer

    check_class_attributes(cls)
    tmp_path = Path(tmp_path)
    root = make_tiny_dataset(tmp_path / "data", modalities=modalities)
    cfg = tiny_config(cls, root, overrides)
    dataset = GenericDataset.from_config(cfg.data)
    device = torch.device("cpu")
    method = build_method_from(cls, cfg, dataset, device)
    trainer = Trainer(method, dataset, cfg, device=device)

    # prepare_epoch: a valid plan; unsupervised methods cannot read identities
    ctx = EpochContext(epoch=0, num_epochs=1, train=dataset.train, modalities=dataset.modalities, device=device,
                       uses_labels=cls.uses_labels, extract_fn=trainer._extract_train, seed=0)
    if not cls.uses_labels:
        try:
            ctx.ground_truth()
        except LabelLeakError:
            pass
        else:  # pragma: no cover - guards the engine itself
            raise AssertionError("ground_truth() must raise LabelLeakError for unsupervised methods")
    plan = method.prepare_epoch(ctx)
    assert isinstance(plan, EpochPlan), "prepare_epoch must return an EpochPlan"
    assert plan.labels.shape == (len(dataset.train),), "EpochPlan.labels needs one label per training sample"
    assert (plan.labels >= 0).any(), "the plan excludes every sample on a trivially clusterable tiny dataset"

    # training_step: named finite scalar losses whose gradients reach the parameters
    from reidkit.data.loaders import build_train_loader
    from reidkit.data.transforms import train_transform

    size = (cfg.data.height, cfg.data.width)
    views = {m: list(method.train_transforms(m) or [train_transform(size)]) for m in dataset.modalities}
    loader = build_train_loader(dataset.train, plan, modalities=dataset.modalities, views=views,
                                mask_transform=train_transform(size) if cls.needs_masks else None,
                                batch_size=cfg.data.batch_size, instances=cfg.data.instances, iterations=1,
                                workers=0, seed=0)
    batch = next(iter(loader))
    assert set(batch) <= set(dataset.modalities), "batches are keyed by modality name"
    method.train()
    losses = method.training_step(batch)
    assert isinstance(losses, dict) and losses, "training_step must return a non-empty dict of losses"
    for name, value in losses.items():
        assert isinstance(name, str), "loss names are strings"
        assert torch.is_tensor(value) and value.dim() == 0, f"loss '{name}' must be a scalar tensor"
        assert torch.isfinite(value), f"loss '{name}' is not finite"
    method.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    grads = [p.grad for p in method.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), "no gradient reached the parameters"

    # embed: [B, D], L2-normalised, for every modality
    method.eval()
    with torch.no_grad():
        for modality in dataset.modalities:
            feats = method.embed(torch.randn(3, 3, *size), modality)
            assert feats.shape[0] == 3 and feats.dim() == 2, f"embed must return [B, D], got {tuple(feats.shape)}"
            assert torch.allclose(feats.norm(dim=1), torch.ones(3), atol=1e-3), "embed must L2-normalise"

    # state dict round trip into a fresh instance
    fresh = build_method_from(cls, cfg, dataset, device)
    fresh.load_state_dict(method.state_dict())

    # one epoch through the real engine, then evaluation
    results = Trainer(build_method_from(cls, cfg, dataset, device), dataset, cfg, device=device).fit()
    assert results, "the fit produced no evaluation results"
    for protocol, r in results.items():
        for key in ("rank1", "mAP", "mINP"):
            assert 0.0 <= r[key] <= 1.0, f"{protocol} {key} = {r[key]} is not a fraction"
    return results


__all__ = ["DataConfig", "check_class_attributes", "check_method", "make_tiny_dataset", "tiny_config"]
