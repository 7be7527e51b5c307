"""``resnet50-agw``: the AGW backbone (Ye et al., "Deep Learning for Person Re-identification: A Survey and
Outlook", TPAMI 2021), the base of the cross-modality AGW baseline (github.com/mangye16/Cross-Modal-Re-ID-baseline)
and of the unsupervised pipelines built on it (ADCA, github.com/yangbincv/ADCA, ``agw.py``; PGM).

A torchvision ResNet-50 (a :class:`~reidkit.models.backbones.ReIDBackbone`: modality stems, last stride,
GeM, BN-neck) with :class:`~reidkit.models.nonlocal_block.NonLocalBlock` s after the last 2 blocks of
``layer2`` and the last 3 blocks of ``layer3`` (AGW's ``non_layers = [0, 2, 3, 0]``). The cross-modality
design gives each modality its own conv1/bn1/relu/maxpool (``model.stems: per-modality``); ``shared`` keeps
one stem.

The residual blocks keep torchvision's names (``layer2.0.conv1.weight``), so an ImageNet ResNet-50 file
loads unchanged; the non-local blocks live beside them (``layer2.nonlocal_blocks.2.*``: after block 2) and
start as identities (their output BatchNorm at zero), so the network with ImageNet weights computes what
ResNet-50 computes until training moves them.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from reidkit.models.backbones import ReIDBackbone, ResNetSpec
from reidkit.models.nonlocal_block import NonLocalBlock
from reidkit.models.weights import imagenet_state_dict, load_state_dict_into, read_weights

if TYPE_CHECKING:  # pragma: no cover
    from reidkit.config import ModelConfig

log = logging.getLogger(__name__)

RESNET50_AGW = ResNetSpec("resnet50-agw", Bottleneck, (3, 4, 6, 3), imagenet="ResNet50_Weights")
AGW_NONLOCAL = (0, 2, 3, 0)  # non-local blocks after the last blocks of layer1..layer4 (AGW's non_layers)


class NonLocalStage(nn.Module):
    """A ResNet stage with non-local blocks after its last ``count`` residual blocks.

    The residual blocks are children ``0 .. n-1`` (torchvision's names); the non-local blocks are
    ``nonlocal_blocks[str(i)]``, applied after block ``i``.
    """

    def __init__(self, stage: nn.Sequential, channels: int, count: int, inter_channels: int = 1) -> None:
        super().__init__()
        blocks = list(stage)
        if not 0 <= count <= len(blocks):
            raise ValueError(f"a stage of {len(blocks)} blocks cannot take {count} non-local blocks")
        for i, block in enumerate(blocks):
            self.add_module(str(i), block)
        self.num_blocks = len(blocks)
        self.nonlocal_blocks = nn.ModuleDict(
            {str(i): NonLocalBlock(channels, inter_channels) for i in range(len(blocks) - count, len(blocks))})

    def forward(self, x: Tensor) -> Tensor:
        for i in range(self.num_blocks):
            x = getattr(self, str(i))(x)
            if str(i) in self.nonlocal_blocks:
                x = self.nonlocal_blocks[str(i)](x)
        return x


class AGWBackbone(ReIDBackbone):
    """ResNet-50 with AGW's non-local blocks (``nonlocal_counts`` per stage; AGW: 0, 2, 3, 0).

    Takes every keyword of :class:`ReIDBackbone` (pooling, gem_p, last_stride, stems, stem_batch, bnneck,
    channels_last). ``inter_channels`` is the non-local bottleneck width (1, as AGW's code).
    """

    def __init__(self, modalities: Sequence[str], *, nonlocal_counts: Sequence[int] = AGW_NONLOCAL,
                 inter_channels: int = 1, spec: ResNetSpec = RESNET50_AGW, **kwargs) -> None:
        super().__init__(spec, modalities, **kwargs)
        counts = tuple(int(c) for c in nonlocal_counts)
        if len(counts) != 4:
            raise ValueError(f"nonlocal_counts needs one count per stage (4), got {counts}")
        self.nonlocal_counts = counts
        for i, (count, width) in enumerate(zip(counts, spec.widths), start=1):
            if count:
                stage = getattr(self, f"layer{i}")
                setattr(self, f"layer{i}", NonLocalStage(stage, width * spec.block.expansion, count,
                                                         inter_channels))
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def reset_parameters(self) -> None:
        """ReIDBackbone's initialisation, then AGW's for the non-local blocks (identities)."""
        super().reset_parameters()
        for module in self.modules():
            if isinstance(module, NonLocalBlock):
                module.reset_parameters()


def load_agw_weights(model: AGWBackbone, weights: str) -> None:
    """``model.weights`` for AGW: ``none``, ``imagenet``, a shipped name or a file (torchvision or reidkit
    layout; a file whose card names another backbone is refused).

    Non-local tensors absent from the file (any ImageNet ResNet-50 file) keep AGW's initialisation; that is
    logged once at info level instead of as missing tensors.
    """
    if weights == "none":
        return
    if weights == "imagenet":
        state, source = imagenet_state_dict(model.spec), f"ImageNet weights of {model.spec.name}"
    else:
        state, source = read_weights(weights, model.spec.name)
    own = model.state_dict()
    keep = {k: v for k, v in own.items() if ".nonlocal_blocks." in k and k not in state}
    if keep:
        log.info("%s: %d non-local tensors are not in the file and keep AGW's initialisation (identity blocks)",
                 source, len(keep))
    load_state_dict_into(model, {**state, **keep}, source)


def resnet50_agw(model_cfg: ModelConfig, modalities: Sequence[str], **overrides) -> AGWBackbone:
    """ResNet-50 with AGW's non-local blocks (D = 2048); ``model.weights: imagenet`` loads torchvision's
    ResNet-50 file unchanged. ``overrides`` replace :class:`~reidkit.config.ModelConfig` fields."""
    fields = {f.name for f in dataclasses.fields(model_cfg)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown backbone overrides {unknown}; valid: {sorted(fields)}")
    cfg = dataclasses.replace(model_cfg, **overrides)
    model = AGWBackbone(modalities, pooling=cfg.pooling, gem_p=cfg.gem_p, last_stride=cfg.last_stride,
                        stems=cfg.stems, stem_batch=cfg.stem_batch, bnneck=cfg.bnneck,
                        channels_last=cfg.channels_last)
    load_agw_weights(model, cfg.weights)
    return model


__all__ = ["AGW_NONLOCAL", "RESNET50_AGW", "AGWBackbone", "NonLocalStage", "load_agw_weights", "resnet50_agw"]
