"""The engine's public hooks: ``Trainer.epoch_context``, the ``on_plan`` callback, ``run(method_cls=...)``
and the one check of a method's declared mask inputs."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidkit.data.datasets.generic import GenericDataset
from reidkit.engine.run import build_method_from, run
from reidkit.engine.trainer import Callback, Trainer
from reidkit.method import EpochPlan, LabelLeakError, MissingMasksError
from reidkit.testing import tiny_config


def make_trainer(cls, root, overrides=(), callbacks=()):
    cfg = tiny_config(cls, root, overrides)
    dataset = GenericDataset.from_config(cfg.data)
    method = build_method_from(cls, cfg, dataset, torch.device("cpu"))
    return Trainer(method, dataset, cfg, device=torch.device("cpu"), callbacks=callbacks)


def truth_of(train) -> np.ndarray:
    return np.unique([s.person_id for s in train], return_inverse=True)[1].astype(np.int64)


@pytest.fixture
def label_spy(example_method):
    """The example method, recording the labels its training batches carry (its loss needs no label, so
    any labelling trains)."""

    class LabelSpy(example_method):
        def __init__(self, cfg, build):
            super().__init__(cfg, build)
            self.batches: list[tuple[np.ndarray, np.ndarray]] = []
            self.num_train_masks = build.num_train_masks

        def training_step(self, batch):
            for b in batch.values():
                self.batches.append((b.indices.numpy().copy(), b.labels.numpy().copy()))
            feats = [F.normalize(self.backbone(b.images, m)["feat"], dim=1) for m, b in batch.items()]
            return {"spread": torch.cat(feats).mean(dim=0).pow(2).sum()}

    LabelSpy.name = "kmeans-proxy"
    return LabelSpy


class OracleLabels(Callback):
    """Replaces every plan's pseudo-labels by the hidden identities (a diagnostic, as benchmarks/ does)."""

    def __init__(self) -> None:
        self.replaced: list[EpochPlan] = []

    def on_plan(self, trainer, ctx, plan):
        self.replaced.append(plan)
        return dataclasses.replace(plan, labels=truth_of(ctx.train), info={**plan.info, "oracle": 1.0})


class Seer(Callback):
    """Sees each plan after the callbacks before it and keeps it (returns None)."""

    def __init__(self) -> None:
        self.plans: list[EpochPlan] = []

    def on_plan(self, trainer, ctx, plan):
        self.plans.append(plan)


def test_on_plan_replaces_the_plan_and_the_run_trains_on_it(label_spy, tiny_root, tmp_path):
    built = []

    class Spy(label_spy):
        def __init__(self, cfg, build):
            super().__init__(cfg, build)
            built.append(self)

    oracle, seer = OracleLabels(), Seer()
    out = tmp_path / "run"
    cfg = tiny_config(Spy, tiny_root, [f"output={out}", "optim.epochs=2", "optim.iterations=2"])
    doc = run(cfg, method_cls=Spy, callbacks=[oracle, seer])  # the class, not the registry's kmeans-proxy

    (method,) = built
    truth = truth_of(GenericDataset.from_config(cfg.data).train)
    assert len(oracle.replaced) == len(seer.plans) == 2
    for own, seen in zip(oracle.replaced, seer.plans):
        assert "oracle" not in own.info  # the method's own plan came first
        np.testing.assert_array_equal(seen.labels, truth)  # the next callback sees the replacement
    assert method.batches and all((labels == truth[idx]).all() for idx, labels in method.batches)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["method"] == doc["method"] == "kmeans-proxy"  # recorded as cfg.method
    for record in saved["epochs"]:  # scored and logged: the replacement, not the method's clustering
        assert record["oracle"] == 1.0 and record["label_ari"] == 1.0
        assert record["clusters"] == len(np.unique(truth)) and record["outliers"] == 0.0


def test_a_plan_callback_that_returns_no_plan_is_named(label_spy, tiny_root):
    class Broken(Callback):
        def on_plan(self, trainer, ctx, plan):
            return plan.labels

    trainer = make_trainer(label_spy, tiny_root, callbacks=[Broken()])
    with pytest.raises(TypeError, match="Broken.on_plan must return an EpochPlan, got ndarray"):
        trainer.fit()


def test_duck_typed_callbacks_need_only_the_hooks_they_use(label_spy, tiny_root):
    class OnlyPlans:
        def __init__(self) -> None:
            self.epochs: list[int] = []

        def on_plan(self, trainer, ctx, plan):
            self.epochs.append(ctx.epoch)

    cb = OnlyPlans()
    make_trainer(label_spy, tiny_root, ["optim.epochs=2"], callbacks=[cb]).fit()
    assert cb.epochs == [0, 1]


def test_epoch_context_is_what_prepare_epoch_gets(label_spy, tiny_root):
    seen = {}

    class Spy(label_spy):
        def prepare_epoch(self, ctx):
            if ctx.epoch == 0:
                seen.update(epoch=ctx.epoch, num_epochs=ctx.num_epochs, modality_ids=ctx.modality_ids.copy(),
                            features=ctx.features().clone(), draw=ctx.generator.random())
            return super().prepare_epoch(ctx)

    make_trainer(Spy, tiny_root, ["optim.epochs=2"]).fit()
    ctx = make_trainer(Spy, tiny_root, ["optim.epochs=2"]).epoch_context(0)  # the same build, untrained
    assert (ctx.epoch, ctx.num_epochs) == (seen["epoch"], seen["num_epochs"]) == (0, 2)
    np.testing.assert_array_equal(ctx.modality_ids, seen["modality_ids"])
    torch.testing.assert_close(ctx.features(), seen["features"])
    assert ctx.generator.random() == seen["draw"]
    with pytest.raises(LabelLeakError):  # identities stay closed to an unsupervised method
        ctx.ground_truth()


def test_declared_mask_inputs_are_checked_once_before_training(label_spy, tiny_root):
    prepared = []

    class ReadsMasks(label_spy):
        needs_mask_features = True

        def prepare_epoch(self, ctx):
            prepared.append(ctx.epoch)
            return super().prepare_epoch(ctx)

    trainer = make_trainer(ReadsMasks, tiny_root)
    assert trainer.method.num_train_masks == len(trainer.dataset.train)  # told when it was built
    train = trainer.dataset.train
    train[1] = dataclasses.replace(train[1], mask_path=None)
    with pytest.raises(MissingMasksError, match=rf"kmeans-proxy .*needs_mask_features.* 1 of {len(train)} "
                                                r"have none .*data\.mask_root"):
        trainer.fit()
    assert prepared == [] and trainer.history == []  # nothing ran
    assert trainer.evaluate()  # evaluation reads no mask

    trainer = make_trainer(label_spy, tiny_root)  # declares none: the same gap is no error
    trainer.dataset.train[1] = dataclasses.replace(trainer.dataset.train[1], mask_path=None)
    trainer.fit()
