"""The pretraining loop: corpus -> views -> recipe -> a backbone weights file and its JSON card.

Files, for ``--output X.pth``: ``X.pth`` (the backbone's state dict without its BN-neck, the stem stored as
torchvision's ``conv1``/``bn1`` so it loads into shared and per-modality stems alike), ``X.json`` (the card:
corpus, mode, recipe, steps, seed, commit, wall time), and while training ``X.ckpt`` (resumable, written
atomically every ``checkpoint_every`` steps, removed when the run ends).

Under ``torchrun`` every rank draws its own images and views (seeded by rank), BatchNorm normalises over
the global batch and DistributedDataParallel averages the gradients; rank 0 writes the files. On CUDA the
forward pass runs under bfloat16 autocast.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from reidkit import __version__, distributed
from reidkit.hardware import native_bf16
from reidkit.config import ModelConfig
from reidkit.engine.checkpoint import load_checkpoint, save_checkpoint, write_json
from reidkit.models.weights import sha256
from reidkit.pretrain.augment import augment
from reidkit.pretrain.config import PretrainConfig, PretrainError
from reidkit.pretrain.corpus import Corpus, CorpusImages, dataset_corpus, drop_unreadable, folder_corpus
from reidkit.pretrain.recipes import PRETRAIN_MODALITY, build_recipe

log = logging.getLogger(__name__)

Progress = Callable[[int, int, dict[str, float]], None]


class _StepBatches(Sampler):
    """Batch ``t`` = ``batch_size`` indices drawn uniformly from a generator seeded by (seed, rank, t), so a
    resumed run draws the same batches as an uninterrupted one."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, steps: int) -> None:
        self.n, self.batch_size, self.seed, self.start, self.steps = n, batch_size, seed, start, steps

    def __len__(self) -> int:
        return self.steps - self.start

    def __iter__(self):
        for t in range(self.start, self.steps):
            g = torch.Generator().manual_seed(_step_seed(self.seed, t, 1))
            yield torch.randint(self.n, (self.batch_size,), generator=g).tolist()


def _step_seed(seed: int, step: int, stream: int) -> int:
    return (seed * 1_000_003 + distributed.rank() * 7919 + step) * 4 + stream


def _collate(items: list[tuple[Tensor, int, int]]) -> tuple[Tensor, Tensor, Tensor]:
    return (torch.stack([i[0] for i in items]), torch.tensor([i[1] for i in items], dtype=torch.long),
            torch.tensor([i[2] for i in items], dtype=torch.long))


def build_corpus(cfg: PretrainConfig) -> Corpus:
    if cfg.folder is not None:
        return folder_corpus(cfg.folder)
    return dataset_corpus(cfg.dataset, cfg.root, preset=cfg.preset, world_seed=cfg.world_seed,
                          modalities=cfg.modalities, labelled=cfg.mode == "supervised")


def build_backbone(cfg: PretrainConfig) -> nn.Module:
    """A randomly initialised ``cfg.backbone`` with one shared stem."""
    from reidkit.registry import BACKBONES

    # contiguous (NCHW), the format the shipped synthetic-pretrained weights were made in, so that the
    # documented command re-makes them tensor for tensor (docs/pretraining.md)
    model_cfg = ModelConfig(backbone=cfg.backbone, weights="none", stems="shared", channels_last=False)
    return BACKBONES.get(cfg.backbone)(model_cfg, (PRETRAIN_MODALITY,))


def build_model(cfg: PretrainConfig, num_ids: int, device: torch.device) -> nn.Module:
    """``cfg``'s recipe around a fresh ``cfg.backbone`` (its ``.backbone``), on ``device``, channels-last if
    ``cfg.channels_last``. Seed torch first: the backbone's initial weights are drawn here."""
    model = build_recipe(cfg.mode, cfg.recipe, build_backbone(cfg), num_ids=num_ids, temperature=cfg.temperature,
                         queue=cfg.queue, momentum=cfg.moco_momentum, align=cfg.modality_align).to(device)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def view_size(cfg: PretrainConfig, step: int) -> tuple[int, int] | None:
    """The (height, width) of step ``step``'s views: ``cfg.low_res`` during the first ``cfg.low_res_steps``
    steps, else None (the images' own size)."""
    return tuple(cfg.low_res) if step < cfg.low_res_steps else None


def make_views(images: Tensor, cfg: PretrainConfig, g: torch.Generator,
               size: tuple[int, int] | None = None) -> tuple[Tensor, ...]:
    """Two augmented views of a [B, 3, H, W] batch in [0, 1], drawn from ``g``, of ``size`` (default H x W),
    then ``cfg.local_crops`` small ones of ``cfg.local_size`` (multi-crop), in ``cfg``'s memory format. The
    small views are drawn after the two full ones, so with none the full views are what they were."""
    views = (augment(images, cfg.augment, g, size), augment(images, cfg.augment, g, size))
    if cfg.local_crops:
        local = dataclasses.replace(cfg.augment, crop_area=cfg.augment.local_crop_area)
        views += tuple(augment(images, local, g, tuple(cfg.local_size)) for _ in range(cfg.local_crops))
    if cfg.channels_last:
        views = tuple(v.contiguous(memory_format=torch.channels_last) for v in views)
    return views


def export_state(backbone: nn.Module) -> dict[str, Tensor]:
    """The backbone's tensors without the BN-neck; a shared stem stored under torchvision's names."""
    return backbone_tensors(backbone.state_dict())


def backbone_tensors(state: dict[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """The tensors under ``prefix`` of a state dict (a backbone's, or a pretraining checkpoint's model with
    ``prefix="backbone."``), without the BN-neck, a shared stem renamed to torchvision's ``conv1``/``bn1``."""
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix) or key[len(prefix):].startswith("neck."):
            continue
        out[key[len(prefix):].removeprefix("stems.shared.")] = value.detach().cpu().contiguous().clone()
    return out


def card_path(weights: str | Path) -> Path:
    """The JSON card beside a weights file: ``X.pth`` -> ``X.json``."""
    return Path(weights).with_suffix(".json")


def _prepare_output(cfg: PretrainConfig, *, resume: bool, force: bool) -> tuple[Path, dict | None]:
    weights = cfg.weights_path
    ckpt = weights.with_suffix(".ckpt")
    if resume and force:
        raise PretrainError("--resume and --force exclude each other")
    if resume:
        if ckpt.is_file():
            return weights, load_checkpoint(ckpt, method="pretrain")
        if weights.is_file():
            raise PretrainError(f"--resume: {weights} is finished (no {ckpt.name} left to resume)")
        raise PretrainError(f"--resume: nothing to resume at {weights} (no {ckpt.name})")
    existing = [p for p in (weights, card_path(weights), ckpt) if p.exists()]
    if existing and not force:
        raise PretrainError(f"{existing[0]} exists: pass --resume to continue an interrupted run or --force "
                            "to overwrite")
    weights.parent.mkdir(parents=True, exist_ok=True)
    for p in existing:
        p.unlink()
    return weights, None


def _schedule(cfg: PretrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def pretrain(cfg: PretrainConfig, *, device: str | None = None, resume: bool = False, force: bool = False,
             progress: Progress | None = None) -> dict[str, Any]:
    """Pretrain ``cfg.backbone`` on ``cfg``'s corpus; write the weights and the card; return the card."""
    from reidkit.engine.run import pick_device, source_state

    dev = distributed.init_from_env(pick_device(device))
    commit, dirty = source_state()  # the code this run starts with, read before any later commit lands
    weights, state = _prepare_output(cfg, resume=resume, force=force) if distributed.is_main() else (None, None)
    state = distributed.broadcast_object(state)
    corpus = build_corpus(cfg)
    skipped: list[dict[str, str]] = []
    if cfg.on_bad_image == "skip":
        corpus, skipped = drop_unreadable(corpus)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, corpus.num_ids, dev)
    backbone = model.backbone
    distributed.sync_batchnorm(model, dev)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg))
    start, elapsed, history = 0, 0.0, []
    if state is not None:
        if state.get("config") != dataclasses.asdict(cfg) | {"output": state["config"].get("output")}:
            log.warning("--resume: the options differ from the interrupted run's; continuing with the saved ones")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, elapsed, history = state["step"], state["elapsed_s"], state["history"]
        log.info("resuming pretraining at step %d of %d", start, cfg.steps)
    ddp = _wrap(model, dev)
    loader = DataLoader(CorpusImages(corpus.samples, (cfg.height, cfg.width)), num_workers=cfg.workers,
                        batch_sampler=_StepBatches(len(corpus.samples), cfg.batch_size, cfg.seed, start, cfg.steps),
                        collate_fn=_collate)
    prec = precision(cfg.amp, dev)
    amp = _autocast(prec, dev)
    model.train()
    t0 = time.perf_counter() - elapsed
    for step, (images, labels, modalities) in enumerate(loader, start=start):
        g = torch.Generator().manual_seed(_step_seed(cfg.seed, step, 2))
        images = images.to(dev, non_blocking=True).float().div_(255)
        views = make_views(images, cfg, g, view_size(cfg, step))
        with amp:
            losses = (ddp or model)(views, labels.to(dev), modalities.to(dev))
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            hint = " or pass --amp off" if prec == "bfloat16" else ""
            raise RuntimeError(f"pretraining diverged at step {step} (loss {loss.item()}); lower --lr{hint}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        logged = {k: float(v.detach()) for k, v in losses.items()}
        if step % 10 == 0 or step + 1 == cfg.steps:
            history.append({"step": step, **logged, "lr": optimizer.param_groups[0]["lr"]})
        if progress is not None and distributed.is_main():
            progress(step + 1, cfg.steps, logged)
        if distributed.is_main() and ((step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps):
            save_checkpoint(weights.with_suffix(".ckpt"), {
                "method": "pretrain", "config": dataclasses.asdict(cfg), "step": step + 1,
                "elapsed_s": time.perf_counter() - t0, "history": history, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})
    wall = time.perf_counter() - t0
    if not distributed.is_main():
        return {}
    torch.save(export_state(backbone), weights)
    card = {
        "format": "reidkit-pretrained-backbone/1", "backbone": cfg.backbone, "weights_sha256": sha256(weights),
        "mode": cfg.mode, "recipe": cfg.recipe if cfg.mode == "self-supervised" else "identity-classification",
        "corpus": corpus.info, "steps": cfg.steps, "batch_size": cfg.batch_size, "image_size": [cfg.height, cfg.width],
        "seed": cfg.seed, "world_size": distributed.world_size(), "device": str(dev),
        "precision": prec,
        "wall_time_s": round(wall, 1), "reidkit": __version__, "git_commit": commit, "git_dirty": dirty,
        "options": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("output", "augment")},
        "augment": dataclasses.asdict(cfg.augment),
        "final_loss": history[-1] if history else None, "loss_history": history,
        **({"skipped_images": skipped} if skipped else {}),
    }
    card = json.loads(json.dumps(card))  # what the file holds (tuples become lists)
    write_json(card_path(weights), card)
    weights.with_suffix(".ckpt").unlink(missing_ok=True)
    log.info("wrote %s and %s (%d steps, %.0f s)", weights, card_path(weights).name, cfg.steps, wall)
    return card


def precision(mode: str, dev: torch.device) -> str:
    """``bfloat16`` or ``float32``: what ``--amp mode`` runs on ``dev``."""
    if mode == "bf16" or (mode == "auto" and (dev.type == "cuda" or (dev.type == "cpu" and native_bf16()))):
        return "bfloat16"
    return "float32"


def _autocast(prec: str, dev: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of ``prec`` (from :func:`precision`) on ``dev``."""
    if prec == "float32":
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=torch.bfloat16)


def _wrap(model: nn.Module, dev: torch.device) -> nn.Module | None:
    if not distributed.is_distributed():
        return None
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                   find_unused_parameters=True)
