"""ResNet backbones for re-identification, with shared or per-modality stems.

A :class:`ReIDBackbone` is a torchvision-layout ResNet (so ImageNet state dicts load unchanged) cut into:

- **stems** (conv1/bn1/relu/maxpool): one shared stem (IMSL's official code, github.com/zqpang/IMSL) or
  one copy per modality (the two-stream design of AGW, github.com/mangye16/Cross-Modal-Re-ID-baseline, and
  ADCA; docs/methods.md, "Shared building blocks");
- a **trunk** ``layer1..layer4`` shared by every modality, with a configurable last stride;
- a **head**: GeM or average pooling, then a BN-neck with a frozen zero bias.

``forward_multi`` concatenates the stem outputs of every modality before ``layer1``, so BatchNorm sees a
mixed-modality batch as in IMSL's official code. ``forward_stem``/``forward_layers``/``forward_head`` let a
method fork the trunk (dc-baseline copies ``layer4`` per modality: docs/methods.md, "dc-baseline: the
network").

The registered builders (``resnet18``, ``resnet34``, ``resnet50``, ``resnet_mini``) all take
``(model_cfg, modalities, **overrides)``; overrides replace :class:`~reidkit.config.ModelConfig` fields.
``model.weights`` is applied by :func:`~reidkit.models.weights.load_weights`: ``none``, ``imagenet``
(torchvision's IMAGENET1K_V1, from the torch hub cache or downloaded) or a local state-dict file. The
architectures themselves (:class:`~reidkit.models.resnet_spec.ResNetSpec`, ``RESNET50`` ...) live in
:mod:`reidkit.models.resnet_spec` and are importable from here too.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from reidkit.models.neck import build_neck
from reidkit.models.pooling import build_pooling
from reidkit.models.resnet_spec import RESNET18, RESNET34, RESNET50, RESNET_MINI, ResNetSpec
from reidkit.models.weights import WeightsError, imagenet_state_dict, load_weights  # noqa: F401 (WeightsError re-exported)

if TYPE_CHECKING:  # pragma: no cover
    from reidkit.config import ModelConfig

log = logging.getLogger(__name__)

STEM_BATCHES = ("joint", "per-modality")
STEM_MODES = ("shared", "per-modality")
_SHARED_KEY = "shared"


# ------------------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------------------
def _make_stem(width: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False),
        bn1=nn.BatchNorm2d(width),
        relu=nn.ReLU(inplace=True),
        maxpool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ))


def _make_stage(block: type, in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    out_channels = width * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    layers = [block(in_channels, width, stride, downsample)]
    layers += [block(out_channels, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    names = tuple(modalities)
    if not names:
        raise ValueError("a backbone needs at least one modality name")
    for name in names:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"modality names must be non-empty strings without '.', got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate modality names: {names}")
    return names


def set_stem_options(module: nn.Module, spec: Any, modalities: Sequence[str], *, stems: str, stem_batch: str,
                     channels_last: bool) -> None:
    """Check and set what every staged backbone shares: ``spec``, ``modalities``, ``stem_mode`` (shared or
    one stem per modality), ``stem_batch`` and ``channels_last`` (ReIDBackbone and models.staged's)."""
    if stems not in STEM_MODES:
        raise ValueError(f"stems must be one of {STEM_MODES}, got {stems!r}")
    if stem_batch not in STEM_BATCHES:
        raise ValueError(f"stem_batch must be one of {STEM_BATCHES}, got {stem_batch!r}")
    module.spec = spec
    module.modalities = _check_modalities(modalities)
    module.stem_mode = stems
    module.stem_batch = stem_batch
    module.channels_last = bool(channels_last)


class ReIDBackbone(nn.Module):
    """ResNet with modality stems, a shared trunk, pooling and a BN-neck.

    Attributes:
        feat_dim: D, the size of the pooled feature.
        modalities: the modality names ``forward`` accepts.
        stem_mode: ``"shared"`` or ``"per-modality"``.
        stems: ``ModuleDict`` keyed ``"shared"`` or by modality; use :meth:`stem` to look one up.
        layer1..layer4, pool, neck: the trunk and the head.
    """

    def __init__(self, spec: ResNetSpec, modalities: Sequence[str], *, pooling: str = "gem",
                 gem_p: float = 3.0, last_stride: int = 1, stems: str = "shared", stem_batch: str = "joint",
                 bnneck: bool = True, channels_last: bool = False) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        set_stem_options(self, spec, modalities, stems=stems, stem_batch=stem_batch, channels_last=channels_last)
        self.feat_dim = spec.feat_dim
        keys = (_SHARED_KEY,) if stems == "shared" else self.modalities
        self.stems = nn.ModuleDict({key: _make_stem(spec.stem_width) for key in keys})
        in_channels = spec.stem_width
        strides = (1, 2, 2, last_stride)
        for i, (width, blocks, stride) in enumerate(zip(spec.widths, spec.layers, strides), start=1):
            setattr(self, f"layer{i}", _make_stage(spec.block, in_channels, width, blocks, stride))
            in_channels = width * spec.block.expansion
        self.pool = build_pooling(pooling, p=gem_p)
        self.neck = build_neck(self.feat_dim, bnneck)
        self.reset_parameters()
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def reset_parameters(self) -> None:
        """Random initialisation: Kaiming-normal convolutions (fan-out), BatchNorm weight 1 and bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.reset_running_stats()

    # -- pieces ---------------------------------------------------------------------------------------
    def stem(self, modality: str) -> nn.Module:
        """The stem (conv1/bn1/relu/maxpool) used for ``modality``; the same object for all when shared."""
        if modality not in self.modalities:
            raise KeyError(f"unknown modality {modality!r}; this backbone was built for "
                           f"{list(self.modalities)}")
        return self.stems[_SHARED_KEY if self.stem_mode == "shared" else modality]

    def forward_stem(self, images: Tensor, modality: str) -> Tensor:
        """[B, 3, H, W] -> [B, C0, H/4, W/4] through the stem of ``modality``."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got shape {tuple(images.shape)}")
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.stem(modality)(images)

    def forward_layers(self, x: Tensor, start: int = 1, end: int = 4) -> Tensor:
        """Run ``layer{start}`` .. ``layer{end}`` (inclusive) on a feature map."""
        if not 1 <= start <= end <= 4:
            raise ValueError(f"need 1 <= start <= end <= 4, got start={start}, end={end}")
        for i in range(start, end + 1):
            x = getattr(self, f"layer{i}")(x)
        return x

    def forward_head(self, fmap: Tensor) -> dict[str, Tensor]:
        """[B, D, h, w] -> ``{"pool": [B, D], "feat": [B, D]}`` (BN-neck output, not L2-normalised)."""
        pooled = self.pool(fmap)
        return {"pool": pooled, "feat": self.neck(pooled)}

    # -- whole passes ---------------------------------------------------------------------------------
    def forward(self, images: Tensor, modality: str) -> dict[str, Tensor]:
        """[B, 3, H, W] images of one modality -> ``{"pool": [B, D], "feat": [B, D]}``."""
        return self.forward_head(self.forward_layers(self.forward_stem(images, modality)))

    def forward_multi(self, images: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
        """``{modality: [B_m, 3, H, W]}`` -> ``{modality: {"pool": [B_m, D], "feat": [B_m, D]}}``.

        The trunk and head run once on the concatenation of every modality, so their BatchNorm
        statistics (trunk and BN-neck) mix the modalities, as IMSL's official forward does. Per-modality
        stems each see their own modality. A shared stem sees the concatenation too (``stem_batch =
        "joint"``) or one modality at a time (``"per-modality"``, IMSL's code). The latter normalises
        each modality with its own batch statistics in training while evaluation uses running statistics
        averaged over the modalities; on the synthetic ``standard`` preset that mismatch cost a supervised
        resnet-mini a third of its mAP (docs/synthetic.md). All images must share one size.
        """
        if not images:
            raise ValueError("forward_multi needs at least one modality")
        names = list(images)
        sizes = [images[m].shape[0] for m in names]
        if self.stem_mode == "shared" and self.stem_batch == "joint":
            stems = [self.forward_stem(torch.cat([images[m] for m in names], dim=0), names[0])]
        else:
            stems = [self.forward_stem(images[m], m) for m in names]
        out = self.forward_head(self.forward_layers(torch.cat(stems, dim=0)))
        parts = {key: torch.split(value, sizes, dim=0) for key, value in out.items()}
        return {m: {key: parts[key][i] for key in parts} for i, m in enumerate(names)}


# ------------------------------------------------------------------------------------------------------
# registered builders
# ------------------------------------------------------------------------------------------------------
def build_resnet(spec: ResNetSpec, model_cfg: ModelConfig, modalities: Sequence[str],
                 **overrides) -> ReIDBackbone:
    """Build ``spec`` from a ``ModelConfig`` whose fields ``overrides`` replace, then load its weights."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(model_cfg)})
    if unknown:
        raise TypeError(f"unknown backbone overrides {unknown}; valid: "
                        f"{[f.name for f in dataclasses.fields(model_cfg)]}")
    cfg = dataclasses.replace(model_cfg, **overrides)
    if spec.imagenet is None and cfg.weights == "imagenet":
        imagenet_state_dict(spec)  # raises before building anything
    model = ReIDBackbone(spec, modalities, pooling=cfg.pooling, gem_p=cfg.gem_p, last_stride=cfg.last_stride,
                         stems=cfg.stems, stem_batch=cfg.stem_batch, bnneck=cfg.bnneck,
                         channels_last=cfg.channels_last)
    load_weights(model, cfg.weights)
    return model


def resnet18(model_cfg: ModelConfig, modalities: Sequence[str], **overrides) -> ReIDBackbone:
    """torchvision ResNet-18 (D = 512)."""
    return build_resnet(RESNET18, model_cfg, modalities, **overrides)


def resnet34(model_cfg: ModelConfig, modalities: Sequence[str], **overrides) -> ReIDBackbone:
    """torchvision ResNet-34 (D = 512)."""
    return build_resnet(RESNET34, model_cfg, modalities, **overrides)


def resnet50(model_cfg: ModelConfig, modalities: Sequence[str], **overrides) -> ReIDBackbone:
    """torchvision ResNet-50 (D = 2048), the backbone of IMSL, ADCA and AGW."""
    return build_resnet(RESNET50, model_cfg, modalities, **overrides)


def resnet_mini(model_cfg: ModelConfig, modalities: Sequence[str], **overrides) -> ReIDBackbone:
    """A small ResNet for CPU runs on small images (D = 256, 1.2 M parameters); no pretrained weights exist.

    One BasicBlock per stage, widths 32-64-128-256, a 32-channel stem. Chosen by forward+backward
    throughput at batch 64, 128x64, last stride 1, on the 2-core development machine (AMD EPYC, torch 2.15,
    one thread, images per CPU-second): this 265; two blocks per stage at widths 24-48-96-192 225; two
    blocks at 32-64-128-256 150; ResNet-18 46. With two otherwise idle cores it ran at 250-580 img/s
    (wall clock); 96x48 images or last stride 2 are faster still (465 and 345 img/s per CPU-second).
    """
    return build_resnet(RESNET_MINI, model_cfg, modalities, **overrides)
