"""An example reidkit method plugin: ``kmeans-proxy``.

Each epoch: embed the training set, run k-means on the features of all modalities together, and use the
L2-normalised cluster centroids as a fixed classifier (cosine logits / temperature, cross-entropy).
Simple, unsupervised and real; the template to copy for a new method.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reidkit import BuildContext, EpochContext, EpochPlan, Method, ModalBatch
from reidkit.config import option


@dataclass(frozen=True)
class KMeansProxyConfig:
    clusters_per_id: float = option(1.0, gt=0, help="k = clusters_per_id x training identities (when known)")
    clusters: int = option(0, ge=0, help="explicit k; 0 = use clusters_per_id")
    iterations: int = option(10, ge=1, help="k-means iterations per epoch")
    temperature: float = option(0.05, gt=0)


def kmeans(x: torch.Tensor, k: int, iterations: int, generator: np.random.Generator) -> torch.Tensor:
    """Spherical k-means on L2-normalised rows of ``x`` [N, D]; returns [N] labels."""
    k = min(k, x.shape[0])
    centroids = x[torch.as_tensor(generator.choice(x.shape[0], size=k, replace=False))]
    for _ in range(iterations):
        labels = (x @ centroids.T).argmax(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).unsqueeze(1)
        centroids = torch.where(counts > 0, F.normalize(sums, dim=1), centroids)
    return (x @ centroids.T).argmax(dim=1)


class KMeansProxy(Method):
    name = "kmeans-proxy"
    Config = KMeansProxyConfig
    uses_labels = False

    def __init__(self, cfg: KMeansProxyConfig, build: BuildContext) -> None:
        super().__init__(cfg, build)
        self.backbone = build.build_backbone()
        # per-epoch state: rebuilt in prepare_epoch, so it is not saved in checkpoints
        self.register_buffer("centroids", torch.zeros(0, self.backbone.feat_dim), persistent=False)

    def prepare_epoch(self, ctx: EpochContext) -> EpochPlan:
        feats = ctx.features()
        ids = self.build.num_train_ids or max(2, len(ctx.train) // 8)
        k = self.cfg.clusters or max(2, round(self.cfg.clusters_per_id * ids))
        labels = kmeans(feats, k, self.cfg.iterations, ctx.generator)
        _, labels = torch.unique(labels, return_inverse=True)
        sums = torch.zeros(int(labels.max()) + 1, feats.shape[1], device=feats.device).index_add_(0, labels, feats)
        self.centroids = F.normalize(sums, dim=1)
        return EpochPlan(labels=labels.cpu().numpy(), info={"k": k})

    def training_step(self, batch: Mapping[str, ModalBatch]) -> dict[str, torch.Tensor]:
        losses = {}
        for modality, b in batch.items():
            feat = F.normalize(self.backbone(b.images, modality)["feat"], dim=1)
            logits = feat @ self.centroids.T / self.cfg.temperature
            losses[f"ce_{modality}"] = F.cross_entropy(logits, b.labels) / len(batch)
        return losses
