"""The fit loop: callback order, resume equals uninterrupted, run directory, numerical faults, schedules."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from reidkit.config import OptimConfig
from reidkit.data.datasets.generic import GenericDataset
from reidkit.engine.diagnostics import cluster_counts, label_diagnostics
from reidkit.engine.optim import lr_factor
from reidkit.engine.run import RunError, build_method_from, run, run_directory
from reidkit.engine.trainer import Callback, NonFiniteLossError, Trainer
from reidkit.testing import tiny_config


class Recorder(Callback):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_fit_start(self, trainer):
        self.log.append((self.name, "fit_start"))

    def on_epoch_start(self, trainer, epoch):
        self.log.append((self.name, "epoch_start", epoch))

    def on_step_end(self, trainer, step, losses):
        self.log.append((self.name, "step_end", step))

    def on_epoch_end(self, trainer, epoch, record):
        self.log.append((self.name, "epoch_end", epoch))

    def on_fit_end(self, trainer, results):
        self.log.append((self.name, "fit_end"))


def make_trainer(cls, root, overrides=(), callbacks=()):
    cfg = tiny_config(cls, root, overrides)
    dataset = GenericDataset.from_config(cfg.data)
    method = build_method_from(cls, cfg, dataset, torch.device("cpu"))
    return Trainer(method, dataset, cfg, device=torch.device("cpu"), callbacks=callbacks)


def test_callbacks_run_in_list_order(example_method, tiny_root):
    log: list = []
    trainer = make_trainer(example_method, tiny_root, ["optim.epochs=2", "optim.iterations=2"],
                           [Recorder("a", log), Recorder("b", log)])
    trainer.fit()
    expected = [("fit_start",)]
    for e in range(2):
        expected += [("epoch_start", e), ("step_end", 0), ("step_end", 1), ("epoch_end", e)]
    expected += [("fit_end",)]
    want = [(n, *ev) for ev in expected for n in ("a", "b")]
    assert log == want


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer, epoch, record):
        trainer.stop_requested = True


def test_resume_gives_the_same_result_as_an_uninterrupted_run(example_method, tiny_root, tmp_path, monkeypatch):
    from reidkit import registry

    monkeypatch.setattr(registry.METHODS, "get", lambda name: example_method)
    overrides = ["optim.epochs=3", "optim.iterations=2", "optim.step_size=1", "optim.gamma=0.5"]
    full = run(tiny_config(example_method, tiny_root, [*overrides, f"output={tmp_path / 'full'}"]))
    part_cfg = tiny_config(example_method, tiny_root, [*overrides, f"output={tmp_path / 'part'}"])
    stopped = run(part_cfg, callbacks=[StopAfterFirstEpoch()])
    assert stopped.get("stopped_early") and not (tmp_path / "part" / "metrics.json").exists()
    resumed = run(part_cfg, resume=True)
    assert resumed["results"] == full["results"]
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rs]
    assert strip(resumed["epochs"]) == strip(full["epochs"])
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]


def test_run_directory_holds_every_file(example_method, tiny_root, tmp_path, monkeypatch):
    from reidkit import registry

    monkeypatch.setattr(registry.METHODS, "get", lambda name: example_method)
    out = tmp_path / "run"
    doc = run(tiny_config(example_method, tiny_root, [f"output={out}", "seed=3"]))
    for name in ("config.yaml", "env.json", "log.txt", "metrics.jsonl", "metrics.json", "checkpoints/last.pt"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["method"] == "kmeans-proxy" and saved["seed"] == 3 and saved["final_model"] == "last epoch"
    assert set(saved["results"]) == {"visible-to-infrared", "infrared-to-visible"}
    for r in saved["results"].values():
        assert all(0 <= r[k] <= 1 for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP"))
    epoch = saved["epochs"][0]
    for key in ("clusters", "outliers", "label_ari", "label_nmi", "mixed_cluster_share", "loss", "time_train_s"):
        assert key in epoch, key
    env = json.loads((out / "env.json").read_text())
    assert env["seed"] == 3 and env["torch"] == torch.__version__
    assert isinstance(env["cpu_native_bf16"], bool) and "cpu" in env  # run times depend on the CPU
    assert not (out / ".lock").exists()
    assert doc["results"] == saved["results"]


def test_zero_epochs_evaluates_the_untrained_model(example_method, tiny_root):
    trainer = make_trainer(example_method, tiny_root, ["optim.epochs=0"])
    results = trainer.fit()
    assert trainer.history == [] and set(results) == {"visible-to-infrared", "infrared-to-visible"}


def test_eval_every_logs_a_curve_without_changing_the_run(example_method, tiny_root):
    """eval.every adds eval_<protocol>_mAP to the epoch records (not to the last epoch, whose model is the
    final one) and leaves training and the final results exactly as without it."""
    plain = make_trainer(example_method, tiny_root, ["optim.epochs=3"])
    plain_results = plain.fit()
    curve = make_trainer(example_method, tiny_root, ["optim.epochs=3", "eval.every=1"])
    curve_results = curve.fit()
    assert curve_results == plain_results
    assert [r["loss"] for r in curve.history] == [r["loss"] for r in plain.history]
    for record in curve.history[:-1]:
        assert set(k for k in record if k.startswith("eval_")) == {
            "eval_visible-to-infrared_mAP", "eval_infrared-to-visible_mAP"}
        assert 0.0 <= record["eval_visible-to-infrared_mAP"] <= 1.0
    assert not any(k.startswith("eval_") for k in curve.history[-1])
    assert not any(k.startswith("eval_") for r in plain.history for k in r)


def test_non_finite_loss_names_the_term_and_epoch(example_method, tiny_root):
    class Exploding(example_method):
        def training_step(self, batch):
            losses = super().training_step(batch)
            losses["boom"] = torch.tensor(float("nan"), requires_grad=True)
            return losses

    Exploding.name = "kmeans-proxy"
    trainer = make_trainer(Exploding, tiny_root)
    with pytest.raises(NonFiniteLossError, match="loss 'boom' is nan at epoch 0"):
        trainer.fit()


def test_a_second_live_run_in_the_same_folder_is_refused(tmp_path):
    (tmp_path / ".lock").write_text(str(os.getpid()))
    with pytest.raises(RunError, match="another run"), run_directory(tmp_path):
        pass
    (tmp_path / ".lock").write_text("999999999")  # a dead process: stale lock is taken over
    with run_directory(tmp_path):
        pass


def test_label_diagnostics_on_a_hand_case():
    labels = np.array([0, 0, 1, 1, -1, 2])
    truth = np.array([5, 5, 6, 6, 7, 7])
    modality = np.array([0, 1, 0, 0, 1, 1])
    d = label_diagnostics(labels, truth, modality)
    assert d["label_ari"] == pytest.approx(1.0)
    assert d["label_purity"] == pytest.approx(1.0)
    assert d["mixed_cluster_share"] == pytest.approx(1 / 3)
    assert d["cross_pair_precision"] == pytest.approx(1.0)  # the one cross pair (cluster 0) is one person
    assert cluster_counts(labels) == {"clusters": 3, "outliers": pytest.approx(1 / 6)}


def test_cross_pair_precision_counts_pairs_across_modalities_only():
    rng = np.random.default_rng(0)
    labels, truth, modality = rng.integers(0, 4, 60), rng.integers(0, 6, 60), rng.integers(0, 3, 60)
    same = total = 0  # brute force over every unordered pair
    for i in range(60):
        for j in range(i + 1, 60):
            if labels[i] == labels[j] and modality[i] != modality[j]:
                total += 1
                same += truth[i] == truth[j]
    assert label_diagnostics(labels, truth, modality)["cross_pair_precision"] == pytest.approx(same / total)
    # a cluster that is pure within each modality but pairs two people across them scores 0
    d = label_diagnostics(np.array([0, 0, 0, 0]), np.array([1, 1, 2, 2]), np.array([0, 0, 1, 1]))
    assert d["cross_pair_precision"] == 0.0
    assert label_diagnostics(np.array([0, 1]), np.array([1, 1]), np.array([0, 1]))["cross_pair_precision"] == 0.0


def test_learning_rate_schedules():
    step = OptimConfig(schedule="step", step_size=2, gamma=0.1, warmup_epochs=2, epochs=6)
    assert [lr_factor(step, e) for e in range(5)] == pytest.approx([0.5, 1.0, 0.1, 0.1, 0.01])
    multi = OptimConfig(schedule="multistep", milestones=(1, 3), gamma=0.5)
    assert [lr_factor(multi, e) for e in range(4)] == [1.0, 0.5, 0.5, 0.25]
    cos = OptimConfig(schedule="cosine", epochs=4)
    assert lr_factor(cos, 0) == 1.0 and math.isclose(lr_factor(cos, 2), 0.5)


def test_epoch_table_has_one_header_and_fits_100_columns():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from reidkit.engine.callbacks import RichProgress

    console = Console(file=io.StringIO(), width=100)
    progress = RichProgress(console)
    trainer = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(epochs=3, iterations=2)), start_epoch=0)
    record = {"epoch": 0, "loss": 12.3456, "clusters": 211, "outliers": 0.0812, "label_ari": 0.41234,
              "mixed_cluster_share": 0.5, "cross_pair_precision": 0.031, "val_mean_mAP": 0.25,
              "time_prepare_s": 9.123, "time_train_s": 8.51}
    progress.on_fit_start(trainer)
    for epoch in range(3):
        progress.on_epoch_start(trainer, epoch)
        progress.on_epoch_end(trainer, epoch, {**record, "epoch": epoch})
    progress.stop()
    lines = console.file.getvalue().splitlines()
    headers = [line for line in lines if line.split()[:2] == ["epoch", "loss"]]
    assert len(headers) == 1 and "xprec" in headers[0] and "mixed_c" not in headers[0]
    rows = [line for line in lines if line.split() and line.split()[0] in ("0", "1", "2")]
    assert len(rows) == 3 and all(len(line) <= 100 for line in headers + rows)
