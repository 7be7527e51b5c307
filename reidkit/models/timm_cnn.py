"""A timm convolutional network mapped onto the reidkit backbone contract.

A timm CNN (ResNet and its variants, ConvNeXt, RegNet, NFNet, ...) declares its stages in ``feature_info``
(the modules whose outputs ``features_only`` returns). reidkit takes the last four of them as
``layer1..layer4`` and everything before the first as the stem:

- **stem** (one copy per modality with ``model.stems: per-modality``): the modules before ``layer1``
  (a timm ResNet: conv1, bn1, act1, maxpool; a ConvNeXt: its patchify stem);
- **layer k**: the modules after stage k-1 up to and including stage k;
- **head**: reidkit's GeM or average pooling (``model.pooling``) and BN-neck, D = the last stage's channels.

Modules after the last stage (timm's classifier head) are dropped. ``model.last_stride: 1`` builds the
model with ``output_stride=16``: timm keeps the last stage's resolution by dilation, where a reidkit ResNet
sets the stride to 1; models that cannot do that ask for ``last_stride: 2``.
"""
from __future__ import annotations

import copy
import itertools
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from reidkit.models.neck import build_neck
from reidkit.models.pooling import build_pooling
from reidkit.models.staged import BackboneSpec, StagedBackbone


def _children(model: nn.Module, stage_names: list[str]) -> list[tuple[str, str, nn.Module]]:
    """``(name, dotted name, module)`` of the model's children in order; a Sequential child whose members
    are stages (ConvNeXt's ``stages.0``) is replaced by its members, as timm's feature extractors do."""
    out = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential) and any(s.startswith(f"{name}.") for s in stage_names):
            out += [(f"{name}_{sub}", f"{name}.{sub}", module) for sub, module in child.named_children()]
        else:
            out.append((name, name, child))
    return out


def _group(modules: list[tuple[str, str, nn.Module]]) -> nn.Module:
    """One module alone keeps its own names (``layer1.0.conv1``); several become a named Sequential."""
    if len(modules) == 1:
        return modules[0][2]
    return nn.Sequential(OrderedDict((name, module) for name, _, module in modules))


def split_stages(model: nn.Module, name: str) -> tuple[list, list[list], int]:
    """The stem modules, the four stages' modules and the last stage's channels of a timm CNN."""
    info = getattr(model, "feature_info", None)
    if not isinstance(info, (list, tuple)) or len(info) < 4:
        raise ValueError(f"{name}: reidkit needs a timm model that declares at least 4 feature stages "
                         "(feature_info), or a VisionTransformer")
    stage_names = [entry["module"] for entry in info[-4:]]
    reductions = [int(entry.get("reduction", 0)) for entry in info[-4:]]
    if reductions[0] >= reductions[-1]:
        raise ValueError(f"{name}: its last four feature stages do not downsample (reductions {reductions}): "
                         "a transformer that is not a VisionTransformer, which reidkit does not map")
    children = _children(model, stage_names)
    dotted = [d for _, d, _ in children]
    missing = [s for s in stage_names if s not in dotted]
    if missing:
        raise ValueError(f"{name}: its stages {missing} are not direct children of the model, so reidkit "
                         "cannot cut it into stem and stages")
    ends = [dotted.index(s) for s in stage_names]
    if ends != sorted(ends):
        raise ValueError(f"{name}: its feature stages are not in module order")
    stem = children[:ends[0]]
    stages = [children[ends[0]:ends[0] + 1]] + [children[a + 1:b + 1] for a, b in itertools.pairwise(ends)]
    if not stem:
        raise ValueError(f"{name}: nothing comes before its first stage, so it has no stem to give each modality")
    return stem, stages, int(info[-1]["num_chs"])


class TimmCNNBackbone(StagedBackbone):
    """A timm CNN as a reidkit backbone (module docstring: the mapping)."""

    def __init__(self, model: nn.Module, spec: BackboneSpec, modalities: Sequence[str], *, pooling: str = "gem",
                 gem_p: float = 3.0, stems: str = "shared", stem_batch: str = "joint", bnneck: bool = True,
                 channels_last: bool = False) -> None:
        super().__init__(spec, modalities, stems=stems, stem_batch=stem_batch, channels_last=channels_last)
        stem, stages, self.feat_dim = split_stages(model, spec.name)
        self.stems = nn.ModuleDict({key: copy.deepcopy(_group(stem)) for key in self.stem_keys()})
        for i, modules in enumerate(stages, start=1):
            setattr(self, f"layer{i}", _group(modules))
        self.pool = build_pooling(pooling, p=gem_p)
        self.neck = build_neck(self.feat_dim, bnneck)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)


__all__ = ["TimmCNNBackbone", "split_stages"]
