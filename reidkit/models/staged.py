"""The part of the backbone contract every reidkit backbone shares, for backbones built from other code.

:class:`~reidkit.models.backbones.ReIDBackbone` defines the contract (docs/plugins.md, "The backbone
contract"): modality stems, four trunk stages ``layer1..layer4``, a head (``pool``, ``neck``). A backbone
made of another library's modules (the timm backbones) subclasses :class:`StagedBackbone`, builds
``stems``, ``layer1..layer4``, ``pool`` and ``neck``, and gets the whole passes (``forward``,
``forward_layers``, ``forward_head``, ``forward_multi``) and the stem lookup from ReIDBackbone itself,
so that every backbone mixes modalities in BatchNorm the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from reidkit.models.backbones import ReIDBackbone, set_stem_options

SHARED_STEM = "shared"  # the key of the one stem when stems are shared (ReIDBackbone's convention)


@dataclass(frozen=True)
class BackboneSpec:
    """What messages and weight loading need to know of a backbone that is not a torchvision ResNet.

    Attributes:
        name: the registry name, e.g. ``"timm:vit_small_patch16_224"``.
        imagenet: always None: these backbones take weights from a local file only.
    """

    name: str
    imagenet: str | None = None


class StagedBackbone(nn.Module):
    """Stems + ``layer1..layer4`` + ``pool`` + ``neck``, with ReIDBackbone's passes.

    A subclass sets ``spec``, ``feat_dim``, ``stems`` (a ``ModuleDict`` keyed ``"shared"`` or by modality),
    ``layer1..layer4``, ``pool`` and ``neck``, and may override :meth:`forward_stem`.
    """

    def __init__(self, spec: BackboneSpec, modalities: Sequence[str], *, stems: str = "shared",
                 stem_batch: str = "joint", channels_last: bool = False) -> None:
        super().__init__()
        set_stem_options(self, spec, modalities, stems=stems, stem_batch=stem_batch, channels_last=channels_last)

    def stem_keys(self) -> tuple[str, ...]:
        """The keys of ``stems``: ``("shared",)`` or the modality names."""
        return (SHARED_STEM,) if self.stem_mode == "shared" else self.modalities

    stem = ReIDBackbone.stem
    forward_stem = ReIDBackbone.forward_stem
    forward_layers = ReIDBackbone.forward_layers
    forward_head = ReIDBackbone.forward_head
    forward = ReIDBackbone.forward
    forward_multi = ReIDBackbone.forward_multi


__all__ = ["SHARED_STEM", "BackboneSpec", "StagedBackbone"]
