"""Frozen-feature scores of a backbone: how the field measures an initialisation before any training.

The backbone's pooled features (no BN-neck, no fine-tuning) rank the test split of a dataset under its
own protocols, as OpenUnReID's model zoo lists an ImageNet ResNet-50 "without training" on Market-1501.
This is what a clustering method sees at its first epoch.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from reidkit.config import ModelConfig
from reidkit.data.datasets.base import ReIDDataset
from reidkit.data.transforms import test_transform
from reidkit.engine.extract import extract_features
from reidkit.evaluation import evaluate


class _Pooled(nn.Module):
    """A backbone seen through the ``embed`` interface that feature extraction calls."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def embed(self, images: Tensor, modality: str) -> Tensor:
        return self.backbone(images, modality)["pool"]


def frozen_backbone(weights: str, modalities: Sequence[str], *, backbone: str = "resnet-mini") -> nn.Module:
    """``backbone`` built for ``modalities`` (one shared stem) with ``model.weights = weights``."""
    from reidkit.registry import BACKBONES

    cfg = ModelConfig(backbone=backbone, weights=weights, stems="shared")
    return BACKBONES.get(backbone)(cfg, tuple(modalities))


@torch.no_grad()
def frozen_features(weights: str, dataset: ReIDDataset, samples: Sequence, *, backbone: str = "resnet-mini",
                    size: tuple[int, int] = (128, 64), batch_size: int = 128, device: str = "cpu") -> Tensor:
    """[N, D] L2-normalised frozen pooled features of ``samples`` (e.g. ``dataset.train``, what a clustering
    method sees at its first epoch) under ``weights``."""
    torch.manual_seed(0)  # "none" means the same random network every time
    model = _Pooled(frozen_backbone(weights, dataset.modalities, backbone=backbone)).to(device).eval()
    return extract_features(model, samples, test_transform(size), device=torch.device(device), batch_size=batch_size)


@torch.no_grad()
def frozen_scores(weights: str, dataset: ReIDDataset, *, backbone: str = "resnet-mini",
                  size: tuple[int, int] = (128, 64), batch_size: int = 128, device: str = "cpu",
                  protocols: Sequence[str] = (), centre_modalities: bool = False) -> dict[str, dict[str, Any]]:
    """``{protocol: scores}`` of the frozen ``weights`` (a file, a shipped name, or ``none``) on ``dataset``'s
    test protocols (all, or ``protocols``); scores as :func:`reidkit.evaluation.evaluate` returns them.

    ``centre_modalities`` is a diagnostic: each modality's mean feature (over the images being ranked) is
    subtracted before ranking, which says how much of the cross-modality error is one offset per modality."""
    torch.manual_seed(0)  # "none" means the same random network every time
    model = _Pooled(frozen_backbone(weights, dataset.modalities, backbone=backbone)).to(device).eval()
    transform = test_transform(size)

    def features(samples):
        f = extract_features(model, samples, transform, device=torch.device(device), batch_size=batch_size)
        if centre_modalities:
            modality = np.array([s.modality for s in samples])
            for m in np.unique(modality):
                rows = torch.from_numpy(modality == m)
                f[rows] -= f[rows].mean(0)
            f = torch.nn.functional.normalize(f, dim=1)
        return f

    names = list(protocols) or list(dataset.protocols)
    return {name: evaluate(features, dataset.protocols[name]) for name in names}
