"""One process of the distributed-equivalence test (tests/test_distributed.py).

Run plainly (one process, the whole global batch) or under ``torch.distributed.run`` (each rank half of
it). Trains ``ddp-probe`` (a resnet-mini with BatchNorm, a momentum cluster memory, k-reciprocal
Jaccard + DBSCAN pseudo-labels) on a tiny dataset with deterministic transforms, and writes each epoch's
pseudo-labels and every step's losses to OUT, so the two runs can be compared.

Usage: python worker.py DATA_ROOT OUT [--set k=v ...]
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reidkit import EpochPlan, Method, distributed
from reidkit.cluster import cluster_centroids, pseudo_labels
from reidkit.data.transforms import test_transform
from reidkit.engine.trainer import Callback
from reidkit.models.memory import ClusterMemory


@dataclass(frozen=True)
class ProbeConfig:
    eps: float = 0.6


class DDPProbe(Method):
    name = "ddp-probe"
    Config = ProbeConfig
    out: Path = Path(".")

    def __init__(self, cfg, build):
        super().__init__(cfg, build)
        self.backbone = build.build_backbone()
        self.memory = ClusterMemory(self.backbone.feat_dim, temperature=0.1, momentum=0.2)

    def train_transforms(self, modality):
        return [test_transform(self.build.image_size)]  # no random augmentation: both runs see equal pixels

    def prepare_epoch(self, ctx):
        feats = ctx.features()
        labels = pseudo_labels(feats, eps=self.cfg.eps, min_samples=2, k1=6, k2=2)
        labels = np.asarray(labels)
        if (labels >= 0).any():
            self.memory.reset(cluster_centroids(feats, torch.as_tensor(labels)))
        np.save(self.out / f"labels-e{ctx.epoch}-r{distributed.rank()}.npy", labels)
        np.save(self.out / f"features-e{ctx.epoch}-r{distributed.rank()}.npy", feats.cpu().numpy())
        return EpochPlan(labels=labels, sampler="per-modality")

    def training_step(self, batch):
        losses = {}
        for modality, b in batch.items():
            feat = F.normalize(self.backbone(b.images, modality)["feat"], dim=1)
            losses[f"memory_{modality}"] = self.memory(feat, b.labels.to(feat.device)) / len(batch)
        return losses


class StepLosses(Callback):
    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_step_end(self, trainer, step, losses):
        self.steps.append({"epoch": trainer.epoch, "step": step, **losses})


def main() -> None:
    from reidkit import registry
    from reidkit.engine.run import run
    from reidkit.registry import Entry
    from reidkit.testing import tiny_config

    root, out, *rest = sys.argv[1:]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    DDPProbe.out = out
    entries = dict(registry.METHODS._discover())
    entries["ddp-probe"] = Entry("ddp-probe", "worker:DDPProbe", "test", lambda: DDPProbe)
    registry.METHODS._entries, registry.METHODS._loaded = entries, {}
    overrides = [v for k, v in zip(rest[::2], rest[1::2]) if k == "--set"]
    cfg = tiny_config(DDPProbe, Path(root), [f"output={out / 'run'}", *overrides])
    record = StepLosses()
    doc = run(cfg, device="cpu", callbacks=[record])
    (out / f"steps-r{distributed.rank()}.json").write_text(json.dumps(record.steps))
    if distributed.is_main():
        (out / "doc.json").write_text(json.dumps({"results": doc["results"], "world": distributed.world_size()}))
    distributed.shutdown()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
