"""``timm:<model name>``: any timm model (github.com/huggingface/pytorch-image-models) as a reidkit backbone.

``model.backbone: timm:vit_small_patch16_224`` builds the timm model without its classifier and maps it
onto the backbone contract: a ``VisionTransformer`` through :mod:`reidkit.models.timm_vit` (patch
embedding per modality, four groups of blocks, token pooling), a CNN through :mod:`reidkit.models.timm_cnn`
(stem per modality, its last four stages, GeM/average pooling). Both end in reidkit's BN-neck.

Weights come from ``model.weights: /path/to/file`` only (timm, torchvision or reidkit layout:
:mod:`reidkit.models.timm_weights`); ``none`` trains from scratch, and nothing is ever downloaded
(``imagenet`` is refused: put the file on disk). timm is an optional dependency (``pip install
'reidkit[timm]'``): without it this module fails to import, which ``reidkit list backbones`` shows.

The registry resolves ``timm:<name>`` through the family object :data:`TIMM` registered as ``timm``
(``reidkit.registry``: ``family:member`` names).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

try:
    import timm
except ImportError as e:  # pragma: no cover - exercised only without timm
    raise ImportError("timm backbones need the timm package: pip install 'reidkit[timm]'") from e
from torch import nn

from reidkit.models.staged import BackboneSpec, StagedBackbone
from reidkit.models.timm_cnn import TimmCNNBackbone, split_stages
from reidkit.models.timm_vit import TimmViTBackbone, is_supported_vit
from reidkit.models.timm_weights import (
    checkpoint_grid,
    from_torchvision_vit,
    layout_of,
    load_into_timm,
)
from reidkit.models.weights import WeightsError, load_state_dict_into, read_weights

if TYPE_CHECKING:  # pragma: no cover
    from reidkit.config import ModelConfig

log = logging.getLogger(__name__)

# timm modules whose models are VisionTransformer (or subclasses, checked after building)
VIT_MODULES = ("timm.models.vision_transformer", "timm.models.vision_transformer_hybrid", "timm.models.deit")


def _arch(model_name: str) -> str:
    return model_name.split(".", 1)[0]  # "vit_small_patch16_224.augreg_in21k" -> the architecture


def _is_vit(model_name: str) -> bool:
    return timm.models.model_entrypoint(_arch(model_name)).__module__ in VIT_MODULES


def _create(model_name: str, **kwargs) -> nn.Module:
    """The timm model without classifier; never pretrained (nothing is downloaded)."""
    return timm.create_model(model_name, pretrained=False, num_classes=0, **kwargs)


def _read_weights(weights: str, name: str) -> tuple[dict | None, str]:
    if weights == "none":
        return None, ""
    if weights == "imagenet":
        raise WeightsError(f"{name}: timm backbones never download weights; set model.weights to a local file "
                           "(timm, torchvision or reidkit layout), e.g. one saved with "
                           "torch.save(timm.create_model(...).state_dict(), path)")
    return read_weights(weights, name)


def _build_vit(model_name: str, state: dict | None, source: str, cfg: ModelConfig, spec: BackboneSpec,
               modalities: Sequence[str]) -> TimmViTBackbone:
    model = _create(model_name, dynamic_img_size=True)
    grid = checkpoint_grid(state, model) if state is not None else None
    if grid is not None and grid != tuple(model.patch_embed.grid_size):
        patch = model.patch_embed.patch_size
        log.info("%s: building at the weights' %d x %d patch grid", spec.name, *grid)
        model = _create(model_name, dynamic_img_size=True, img_size=(grid[0] * patch[0], grid[1] * patch[1]))
    if not is_supported_vit(model):
        raise ValueError(f"{spec.name}: {type(model).__name__} changes how a ViT embeds its tokens "
                         "(e.g. a distillation token); reidkit maps plain VisionTransformers")
    if state is not None and layout_of(state) != "reidkit":
        load_into_timm(model, state, source, spec.name)
    return TimmViTBackbone(model, spec, modalities, stems=cfg.stems, stem_batch=cfg.stem_batch,
                           bnneck=cfg.bnneck)


def _build_cnn(model_name: str, state: dict | None, source: str, cfg: ModelConfig, spec: BackboneSpec,
               modalities: Sequence[str]) -> TimmCNNBackbone:
    stride_error = None
    try:
        model = _create(model_name, **({"output_stride": 16} if cfg.last_stride == 1 else {}))
    except TypeError as e:  # no output_stride argument: say so only if the model could be mapped at all
        if cfg.last_stride != 1:
            raise
        model, stride_error = _create(model_name), e
    if getattr(model, "output_fmt", "NCHW") != "NCHW":
        raise ValueError(f"{spec.name}: its stages return {model.output_fmt} maps; reidkit maps CNNs "
                         "(NCHW stages) and VisionTransformers")
    split_stages(model, spec.name)  # raises when the model cannot be cut into stem and four stages
    if stride_error is not None:
        raise ValueError(f"{spec.name} cannot keep its last stage's resolution (timm's output_stride=16): "
                         f"set model.last_stride=2 ({stride_error})") from stride_error
    if state is not None and layout_of(state) != "reidkit":
        load_into_timm(model, state, source, spec.name)
    return TimmCNNBackbone(model, spec, modalities, pooling=cfg.pooling, gem_p=cfg.gem_p, stems=cfg.stems,
                           stem_batch=cfg.stem_batch, bnneck=cfg.bnneck, channels_last=cfg.channels_last)


def timm_backbone(model_name: str, model_cfg: ModelConfig, modalities: Sequence[str],
                  **overrides) -> StagedBackbone:
    """Build ``timm:<model_name>`` for ``modalities`` from a ``ModelConfig`` (``overrides`` replace fields).

    ViTs ignore ``model.pooling``, ``gem_p``, ``last_stride`` and ``channels_last`` (they pool tokens as
    the timm model does); CNNs use them all.
    """
    fields = {f.name for f in dataclasses.fields(model_cfg)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown backbone overrides {unknown}; valid: {sorted(fields)}")
    cfg = dataclasses.replace(model_cfg, **overrides)
    spec = BackboneSpec(f"timm:{model_name}")
    state, source = _read_weights(cfg.weights, spec.name)
    if state is not None and layout_of(state) == "torchvision-vit":
        state = from_torchvision_vit(state)
    if _is_vit(model_name):
        backbone = _build_vit(model_name, state, source, cfg, spec, modalities)
    else:
        backbone = _build_cnn(model_name, state, source, cfg, spec, modalities)
    if state is not None and layout_of(state) == "reidkit":
        load_state_dict_into(backbone, state, source)
    return backbone


class TimmFamily:
    """The registry family ``timm``: ``BACKBONES.get("timm:<model name>")`` calls :meth:`member`.

    Attributes:
        example: a member small enough for tests (timm's 0.3 M-parameter test ViT).
    """

    example = "test_vit"

    def member(self, model_name: str) -> Callable[..., StagedBackbone]:
        """The builder of ``timm:<model_name>`` (``(model_cfg, modalities, **overrides)``)."""
        if ":" in model_name:
            raise ValueError(f"timm:{model_name}: hub names are not accepted (nothing is downloaded); name a timm "
                             "architecture and pass the weights file as model.weights")
        if not timm.is_model(_arch(model_name)):
            close = difflib.get_close_matches(model_name, timm.list_models(), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join('timm:' + c for c in close)}?" if close else ""
            raise ValueError(f"timm has no model {model_name!r}{hint} (timm.list_models() lists them)")
        builder = functools.partial(timm_backbone, model_name)
        builder.__doc__ = f"timm:{model_name} (reidkit.models.timm_backbone.timm_backbone)"
        return builder

    def __call__(self, *args, **kwargs):
        raise TypeError("name a timm model: model.backbone=timm:<model name>, e.g. timm:vit_small_patch16_224")

    def __repr__(self) -> str:
        return "TimmFamily(timm:<model name>)"


TIMM = TimmFamily()

__all__ = ["TIMM", "VIT_MODULES", "TimmFamily", "timm_backbone"]
