"""Method, backbone and dataset contract checks, reusable by third-party plugins.

In a plugin's own tests::

    from reidkit.testing import check_method

    def test_contract(tmp_path):
        check_method(MyMethod, tmp_path)

``check_method`` writes a tiny dataset in the generic layout (random person-like images, masks), builds
the method, and checks the contract of ``reidkit/method.py``: the class attributes, ``prepare_epoch``
returning a valid :class:`~reidkit.method.EpochPlan`, named finite losses whose gradients reach the
parameters, ``embed`` shapes and normalisation, the label rule for unsupervised methods, a state-dict round
trip, and a one-epoch fit through the real engine.

``check_backbone(name_or_builder)`` checks a backbone against the contract the methods rely on
(docs/plugins.md, "The backbone contract"): ``feat_dim``, ``modalities``, ``forward``, ``forward_stem``,
``forward_layers`` (forkable at ``layer4``), ``forward_head``/``pool``/``neck``, ``forward_multi``, shared and
per-modality stems, gradients through every stage, a state-dict round trip and tracing (``reidkit export``).

``check_dataset(cls, tmp_path)`` checks a dataset class against the dataset contract (docs/plugins.md,
"Dataset plugins"; ``reidkit.data.datasets.contract``): its ``Config``, roles, training split, protocols and
report, on the tiny copy of its layout that its ``write_example`` writes.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reidkit.config import DataConfig, resolve
from reidkit.data.datasets.contract import check_dataset
from reidkit.method import EpochPlan, LabelLeakError, Method

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
    ctx = trainer.epoch_context(0)
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
                                mask_transform=train_transform(size) if method.needs_masks else None,
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


# -- backbones -----------------------------------------------------------------------------------------
def _close(a: torch.Tensor, b: torch.Tensor, what: str, atol: float = 1e-4) -> None:
    assert a.shape == b.shape, f"{what}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ"
    assert torch.allclose(a, b, atol=atol, rtol=1e-4), f"{what}: differ by {(a - b).abs().max().item():.2e}"


def _grad_names(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


class _Embedding(torch.nn.Module):
    def __init__(self, backbone: torch.nn.Module, modality: str) -> None:
        super().__init__()
        self.backbone, self.modality = backbone, modality

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images, self.modality)["feat"]


def _check_backbone_eval(model: torch.nn.Module, modalities: Sequence[str], size: tuple[int, int],
                         batch: int) -> None:
    gen = torch.Generator().manual_seed(0)
    images = {m: torch.randn(batch, 3, *size, generator=gen) for m in modalities}
    dim = model.feat_dim
    model.eval()
    with torch.no_grad():
        multi = model.forward_multi(images)
        assert set(multi) == set(modalities), "forward_multi returns one entry per modality"
        for m, x in images.items():
            out = model(x, m)
            assert isinstance(out, dict) and {"pool", "feat"} <= set(out), "forward returns {'pool', 'feat'}"
            for key in ("pool", "feat"):
                assert out[key].shape == (batch, dim), f"forward()['{key}'] must be [B, feat_dim]"
                assert torch.isfinite(out[key]).all(), f"forward()['{key}'] is not finite"
                _close(multi[m][key], out[key], f"forward_multi vs forward ['{key}'], {m}")
            stem = model.forward_stem(x, m)
            assert torch.is_tensor(stem) and stem.shape[0] == batch, "forward_stem keeps the batch first"
            x3 = model.forward_layers(stem, 1, 3)
            x4 = model.forward_layers(x3, 4, 4)
            _close(x4, model.forward_layers(stem), "forward_layers(1, 3) then (4, 4) vs (1, 4)")
            _close(copy.deepcopy(model.layer4)(x3), x4, "a deep copy of layer4 vs forward_layers(4, 4)")
            head = model.forward_head(x4)
            _close(head["pool"], out["pool"], "forward_head()['pool'] vs forward()['pool']")
            _close(model.pool(x4), out["pool"], "pool(layer4 output) vs forward()['pool']")
            _close(model.neck(head["pool"]), out["feat"], "neck(pool) vs forward()['feat']")
        for bad in ("no-such-modality",):
            try:
                model.forward_stem(images[modalities[0]], bad)
            except (KeyError, ValueError):
                pass
            else:
                raise AssertionError("forward_stem must refuse a modality the backbone was not built for")


def _check_backbone_train(model: torch.nn.Module, modalities: Sequence[str], size: tuple[int, int],
                          batch: int, stems: str) -> None:
    gen = torch.Generator().manual_seed(1)
    images = {m: torch.randn(batch, 3, *size, generator=gen) for m in modalities}
    model.train()
    model.zero_grad(set_to_none=True)
    out = model.forward_multi(images)
    loss = sum(o["feat"].pow(2).mean() + o["pool"].pow(2).mean() for o in out.values())
    assert torch.isfinite(loss), "training forward is not finite"
    loss.backward()
    for part in ("layer1", "layer2", "layer3", "layer4", "neck"):
        params = [p for p in getattr(model, part).parameters() if p.requires_grad]
        assert not params or any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), \
            f"no gradient reached {part}"
    if len(modalities) > 1:
        reached = []
        for m in modalities[:2]:
            model.zero_grad(set_to_none=True)
            model(images[m], m)["feat"].pow(2).mean().backward()
            reached.append(_grad_names(model))
        if stems == "shared":
            assert reached[0] == reached[1], "a shared stem: every modality trains the same parameters"
        else:
            assert reached[0] != reached[1], "per-modality stems: each modality trains its own stem"
    model.zero_grad(set_to_none=True)


def check_backbone(backbone: str | Callable[..., torch.nn.Module], *,
                   modalities: Sequence[str] = ("visible", "infrared"), size: tuple[int, int] = (64, 32),
                   other_size: tuple[int, int] | None = (32, 16), batch: int = 2,
                   overrides: dict[str, Any] | None = None) -> torch.nn.Module:
    """Check a backbone against the contract the built-in methods rely on; returns the last one built.

    Args:
        backbone: a registered name (``"resnet50-agw"``, ``"timm:test_vit"``) or a builder
            ``(model_cfg, modalities, **overrides)``.
        modalities: the modality names to build it for.
        size: (H, W) of the test images; ``other_size``: a second size it must also run at (or None).
        batch: images per modality (at least 2: training-mode BatchNorm).
        overrides: ``ModelConfig`` fields for the builder (``stems`` is set by the check, both ways).
    Raises:
        AssertionError naming the breach.
    """
    from reidkit.config import ModelConfig
    from reidkit.registry import BACKBONES

    builder = BACKBONES.get(backbone) if isinstance(backbone, str) else backbone
    modalities = tuple(modalities)
    extra = dict(overrides or {})
    extra.pop("stems", None)
    model = None
    for stems in ("shared", "per-modality"):
        torch.manual_seed(0)
        model = builder(ModelConfig(), modalities, stems=stems, **extra)
        assert isinstance(model, torch.nn.Module), "a backbone builder returns an nn.Module"
        assert isinstance(model.feat_dim, int) and model.feat_dim > 0, "feat_dim must be a positive int"
        assert tuple(model.modalities) == modalities, "modalities must be the names it was built for"
        for part in ("layer1", "layer2", "layer3", "layer4", "pool", "neck"):
            assert isinstance(getattr(model, part, None), torch.nn.Module), f"missing module '{part}'"
        _check_backbone_eval(model, modalities, size, batch)
        _check_backbone_train(model, modalities, size, batch, stems)
        fresh = builder(ModelConfig(), modalities, stems=stems, **extra).eval()
        fresh.load_state_dict(model.state_dict())
        model.eval()
        x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            _close(fresh(x, modalities[-1])["feat"], model(x, modalities[-1])["feat"], "state-dict round trip")
            if other_size is not None:
                other = model(torch.randn(batch, 3, *other_size), modalities[0])["feat"]
                assert other.shape == (batch, model.feat_dim), f"it must also run at {other_size}"
            traced = torch.jit.trace(_Embedding(model, modalities[-1]), x, check_trace=False)
            _close(traced(x), model(x, modalities[-1])["feat"], "traced (export) vs eager features")
    return model


__all__ = ["DataConfig", "check_backbone", "check_class_attributes", "check_dataset", "check_method",
           "make_tiny_dataset", "tiny_config"]


def check_export(checkpoint: str | Path, output: str | Path, fmt: str, images) -> None:
    """``reidkit export`` of a run's checkpoint gives, for every modality, the features the method's own
    ``embed`` gives on ``images`` ([B, 3, H, W]) to 1e-4. ``fmt``: ``torchscript`` or ``onnx`` (needs
    onnxruntime). Raises ``AssertionError`` naming the modality that differs."""
    from reidkit.cli import main
    from reidkit.engine.run import restore_checkpoint

    output = Path(output)
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(output), "--format", fmt]) == 0
    method = restore_checkpoint(checkpoint, device="cpu").method.eval()
    modalities = method.build.modalities
    paths = [output.with_name(f"{output.stem}-{m}{output.suffix}") for m in modalities]
    check_exported(method, modalities, paths, fmt, images)


def check_exported(method, modalities, paths, fmt: str, images) -> None:
    """Each exported file (``paths``, one per modality) gives ``method.embed``'s features on ``images``."""
    for modality, path in zip(modalities, paths):
        with torch.no_grad():
            eager = method.embed(images, modality)
        if fmt == "torchscript":
            exported = torch.jit.load(str(path))(images)
        else:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path))
            exported = torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
        assert torch.allclose(eager, exported, atol=1e-4), f"exported features differ for {modality}"
