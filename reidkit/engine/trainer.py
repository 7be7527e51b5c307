"""The fit loop: prepare_epoch -> plan callbacks -> train steps -> callbacks, then a final evaluation of the
last model.

Before the first epoch, :func:`check_mask_inputs` checks the shape-mask inputs the method declared when it
was built (``needs_masks``, ``needs_mask_features``) against the training set: the one place a missing
mask is reported, as :class:`~reidkit.method.MissingMasksError` (evaluation needs no mask).

One epoch (:meth:`Trainer.fit`):

1. ``on_epoch_start``;
2. :meth:`Trainer.epoch_context` builds the :class:`~reidkit.method.EpochContext` and the method's
   ``prepare_epoch`` turns it into an :class:`~reidkit.method.EpochPlan` (pseudo-labels, sampler);
3. ``on_plan``: every callback in turn sees the plan, and may return another one to train on instead
   (oracle labels, a fixed labelling, a diagnostic of the plan's ``details``). The replacement is what is
   scored against the hidden identities, logged and trained on; the method's own state (memories,
   proxies) is what its ``prepare_epoch`` built, so a replacement keeps a labelling the method's state can
   serve (or the method rebuilds from it);
4. the training steps (``on_step_end`` after each), then ``on_epoch_end`` with the epoch's record.

:meth:`Trainer.epoch_context` is also the public way to hand ``prepare_epoch`` what a run hands it outside
:meth:`~Trainer.fit` (diagnostics, tests), without rebuilding the context by hand.

Randomness is re-seeded from ``(seed, epoch)`` at the start of every epoch (torch, samplers, the
context's numpy generator), so a run resumed from the checkpoint of epoch e replays epochs e+1.. exactly
as the uninterrupted run does (on CPU). No checkpoint is ever chosen by a test score: the final model is
the last epoch's.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from reidkit import distributed
from reidkit.config import RunConfig
from reidkit.data.datasets.base import ReIDDataset
from reidkit.data.image_cache import ImageCache
from reidkit.data.loaders import build_train_loader
from reidkit.data.records import Sample
from reidkit.data.transforms import test_transform, train_transform
from reidkit.engine.diagnostics import cluster_counts, label_diagnostics
from reidkit.engine.extract import extract_features
from reidkit.engine.optim import build_optimizer, build_scheduler
from reidkit.evaluation import evaluate
from reidkit.method import EpochContext, EpochPlan, Method, MissingMasksError

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the term and the epoch."""


class Callback:
    """Hooks called by :class:`Trainer` in list order. Override what you need.

    A callback need not subclass this class: the trainer calls the hooks an object has.
    """

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...

    def on_plan(self, trainer: Trainer, ctx: EpochContext, plan: EpochPlan) -> EpochPlan | None:
        """After the method's ``prepare_epoch`` (``ctx`` is the context it was given, its features cached),
        before the plan is scored, logged and trained on. Return an :class:`EpochPlan` to use instead of
        ``plan`` (the next callback sees it), or None to keep it. In a distributed run every rank calls it,
        so a replacement must be the same on every rank."""
        return None

    def on_step_end(self, trainer: Trainer, step: int, losses: Mapping[str, float]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: Mapping[str, Any]) -> None: ...

    def on_fit_end(self, trainer: Trainer, results: Mapping[str, Any]) -> None: ...


def _checked_plan(plan: Any, source: str) -> EpochPlan:
    if not isinstance(plan, EpochPlan):
        raise TypeError(f"{source} must return an EpochPlan, got {type(plan).__name__}")
    return plan


def check_mask_inputs(method: Method, train: Sequence[Sample]) -> None:
    """The one check of a method's mask inputs: :class:`~reidkit.method.MissingMasksError` when ``method``
    declares ``needs_masks`` or ``needs_mask_features`` and a sample of ``train`` has no shape mask."""
    declared = [name for name in ("needs_masks", "needs_mask_features") if getattr(method, name, False)]
    missing = [s.path for s in train if s.mask_path is None] if declared else []
    if missing:
        name = getattr(method, "name", "") or type(method).__name__
        raise MissingMasksError(
            f"{name} reads the training images' shape masks ({', '.join(declared)}), but {len(missing)} of "
            f"{len(train)} have none (e.g. {missing[0]}): set data.mask_root, or turn off the method_args "
            "option that asks for masks")


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**31 - 1)


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``optim.amp`` on this device (None = full precision; CPU is always None)."""
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "fp16":
        return torch.float16
    if setting == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


class Trainer:
    """Trains one method on one dataset. ``fit()`` returns the evaluation results of the last model."""

    def __init__(self, method: Method, dataset: ReIDDataset, cfg: RunConfig, *, device: torch.device,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.method = method
        self.dataset = dataset
        self.cfg = cfg
        self.device = device
        self.callbacks = list(callbacks)
        self.size = (cfg.data.height, cfg.data.width)
        self.image_cache = ImageCache(cfg.data.image_cache_mb * 2**20)
        self.amp_dtype = amp_dtype(cfg.optim.amp, device)
        self.optimizer = build_optimizer(method, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.epoch = 0
        self.results: dict[str, Any] = {}
        self.validation_results: dict[str, Any] = {}
        self.stop_requested = False
        self._elapsed_before = 0.0
        self._fit_t0: float | None = None
        self._ddp: torch.nn.Module | None = None
        self._truth = np.fromiter((s.person_id for s in dataset.train), dtype=np.int64, count=len(dataset.train))

    # state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.cfg.method,
            "epoch": self.epoch,
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "wall_time_s": self.wall_time(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue after the epoch recorded in ``state`` (a checkpoint of this method)."""
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.start_epoch = int(state["epoch"]) + 1
        self._elapsed_before = float(state.get("wall_time_s", 0.0))

    def fit_time(self) -> float:
        """Seconds since ``fit()`` started in this process."""
        return 0.0 if self._fit_t0 is None else time.perf_counter() - self._fit_t0

    def wall_time(self) -> float:
        """Training wall time including the time before a resume."""
        return self._elapsed_before + self.fit_time()

    # the loop ------------------------------------------------------------------------------------------
    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def fit(self) -> dict[str, Any]:
        check_mask_inputs(self.method, self.dataset.train)
        self._fit_t0 = time.perf_counter()
        self.method.to(self.device)
        distributed.sync_batchnorm(self.method, self.device)  # both no-ops in a single process
        self._ddp = distributed.wrap_ddp(self.method, self.device)
        self._call("on_fit_start")
        for epoch in range(self.start_epoch, self.cfg.optim.epochs):
            self.epoch = epoch
            record = self._run_epoch(epoch)
            self.history.append(record)
            self._call("on_epoch_end", epoch, record)
            self.stop_requested = distributed.any_rank(self.stop_requested)  # every rank stops together
            if self.stop_requested and epoch < self.cfg.optim.epochs - 1:
                log.warning("stopped after epoch %d as requested; --resume continues from it", epoch)
                return {}
        self.stop_requested = False
        self.validation_results = self.evaluate_validation()
        self.results = self.evaluate() if self.cfg.eval.test else {}
        log.info("decoded images kept in memory: %r", self.image_cache)
        self._call("on_fit_end", self.results)
        return self.results

    def _run_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        seed = epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed)
        self._call("on_epoch_start", epoch)
        t0 = time.perf_counter()
        ctx = self.epoch_context(epoch)
        plan = _checked_plan(self.method.prepare_epoch(ctx), f"{type(self.method).__name__}.prepare_epoch")
        t_prepare = time.perf_counter() - t0
        plan = self._plan_callbacks(ctx, plan)
        record: dict[str, Any] = {"epoch": epoch, **cluster_counts(plan.labels)}
        record.update(label_diagnostics(plan.labels, self._truth, ctx.modality_ids))
        record.update(plan.info)
        record["time_prepare_s"] = t_prepare
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        t1 = time.perf_counter()
        if record["clusters"] == 0:
            log.warning("epoch %d: no sample has a label (all outliers); training skipped this epoch", epoch)
            record["skipped"] = True
        else:
            record.update(self._train_steps(epoch, plan, seed))
        self.scheduler.step()
        record["time_train_s"] = time.perf_counter() - t1
        record["time_epoch_s"] = time.perf_counter() - t0

        def due(every: int) -> bool:  # the final evaluation scores the last epoch anyway
            return bool(every) and (epoch + 1) % every == 0 and epoch + 1 < cfg.optim.epochs

        # curves for the report, logged only: the final model is always the last epoch's
        if due(cfg.eval.every) and cfg.eval.test:
            record.update(self._map_curve("eval", self.evaluate))
        if due(cfg.eval.val_every) and self.dataset.validation:
            scores = self._map_curve("val", self.evaluate_validation)
            record.update(scores)
            record["val_mean_mAP"] = float(np.mean([v for k, v in scores.items() if k.endswith("_mAP")]))
        return record

    def epoch_context(self, epoch: int) -> EpochContext:
        """The context the method's ``prepare_epoch`` gets at ``epoch``: the training set, its modalities,
        the device, the epoch's seeded generator, and feature extraction with the current model (cached per
        context). Identities stay behind ``ground_truth()``, open only to a method with ``uses_labels``."""
        return EpochContext(epoch=epoch, num_epochs=self.cfg.optim.epochs, train=self.dataset.train,
                            modalities=self.dataset.modalities, device=self.device,
                            uses_labels=self.method.uses_labels, extract_fn=self._extract_train,
                            seed=self.cfg.seed)

    def _plan_callbacks(self, ctx: EpochContext, plan: EpochPlan) -> EpochPlan:
        """``plan`` after every callback's ``on_plan`` (each sees the previous one's replacement)."""
        for cb in self.callbacks:
            hook = getattr(cb, "on_plan", None)
            replaced = None if hook is None else hook(self, ctx, plan)
            if replaced is not None:
                plan = _checked_plan(replaced, f"{type(cb).__name__}.on_plan")
        return plan

    @staticmethod
    def _map_curve(prefix: str, score) -> dict[str, float]:
        """``{prefix}_<protocol>_mAP`` of ``score()`` and the seconds it took as ``time_{prefix}_s``."""
        t0 = time.perf_counter()
        out = {f"{prefix}_{name}_mAP": float(result["mAP"]) for name, result in score().items()}
        out[f"time_{prefix}_s"] = time.perf_counter() - t0
        return out

    def _train_steps(self, epoch: int, plan: EpochPlan, seed: int) -> dict[str, float]:
        cfg = self.cfg
        modalities = self.dataset.modalities
        views = {m: list(self.method.train_transforms(m) or [train_transform(self.size)]) for m in modalities}
        loader = build_train_loader(
            self.dataset.train, plan, modalities=modalities, views=views,
            mask_transform=train_transform(self.size) if self.method.needs_masks else None,
            batch_size=cfg.data.batch_size, instances=cfg.data.instances,
            iterations=plan.iterations or cfg.optim.iterations, workers=cfg.data.workers, seed=seed,
            rank=distributed.rank(), world_size=distributed.world_size(), cache=self.image_cache,
        )
        step_fn = self._ddp if self._ddp is not None else self.method.training_step
        self.method.train()
        sums: dict[str, float] = {}
        steps = 0
        for step, batch in enumerate(loader):
            batch = {m: b.to(self.device) for m, b in batch.items()}
            if self.amp_dtype is not None:
                with torch.autocast("cuda", dtype=self.amp_dtype):
                    losses = step_fn(batch)
            else:
                losses = step_fn(batch)
            values = self._check_losses(losses, epoch, step)
            total = sum(losses.values())
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            if cfg.optim.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.method.parameters(), cfg.optim.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
            self._call("on_step_end", step, values)
        out = {f"loss_{k}": v / max(steps, 1) for k, v in sums.items()}
        out["loss"] = sum(out.values())
        out["steps"] = steps
        return out

    @staticmethod
    def _check_losses(losses: Mapping[str, torch.Tensor], epoch: int, step: int) -> dict[str, float]:
        """The loss values as floats (averaged over ranks in a distributed run, so every rank sees the
        same values and stops together on a non-finite one)."""
        if not losses:
            raise ValueError("training_step returned no loss")
        stacked = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        means = distributed.all_mean(stacked).tolist()
        values = {}
        for name, v in zip(losses, means):
            if not math.isfinite(v):
                raise NonFiniteLossError(f"loss '{name}' is {v} at epoch {epoch}, step {step}; "
                                         "the last good checkpoint is kept")
            values[name] = v
        return values

    # features and evaluation ------------------------------------------------------------------------------
    def _extract_train(self, *, view=None, indices=None, source="image") -> torch.Tensor:
        samples = self.dataset.train if indices is None else [self.dataset.train[i] for i in indices]
        return self._extract(samples, view=view, source=source)

    def features_fn(self, samples):
        return self._extract(samples, flip=self.cfg.eval.flip)

    def _extract(self, samples, **kwargs) -> torch.Tensor:
        """Features of ``samples``; in a distributed run each rank embeds its share and all are gathered."""
        share = samples
        if distributed.is_distributed() and len(samples) >= distributed.world_size():
            share = samples[distributed.shard(len(samples))]
        feats = extract_features(self.method, share, test_transform(self.size), device=self.device,
                                 batch_size=self.cfg.eval.batch_size, workers=self.cfg.data.workers,
                                 amp_dtype=self.amp_dtype, cache=self.image_cache, **kwargs)
        return feats if share is samples else distributed.gather_rows(feats)

    def evaluate(self) -> dict[str, Any]:
        """Every selected test protocol of the dataset, on the current (last) model."""
        protocols = self.dataset.protocols
        names = list(self.cfg.eval.protocols) or list(protocols)
        missing = [n for n in names if n not in protocols]
        if missing:
            raise ValueError(f"eval.protocols: {', '.join(missing)} not in dataset "
                             f"{self.dataset.name!r} (has: {', '.join(protocols)})")
        return self._score({name: protocols[name] for name in names}, "test")

    def evaluate_validation(self) -> dict[str, Any]:
        """Every protocol of the validation split (``data.val_ids``) on the current model; {} without one."""
        return self._score(self.dataset.validation, "validation")

    def _score(self, protocols: Mapping[str, Any], split: str) -> dict[str, Any]:
        results = {}
        for name, protocol in protocols.items():
            t0 = time.perf_counter()
            results[name] = evaluate(self.features_fn, protocol, max_trials=self.cfg.eval.trials)
            log.info("evaluated %s %s in %.1fs", split, name, time.perf_counter() - t0)
        return results
