"""Weights for timm backbones, from a local file only: timm, torchvision or reidkit layout.

- **timm layout** (what ``timm`` saves, and what its hub files hold): loaded into the timm model before
  reidkit cuts it into stems and stages, through the model family's own ``checkpoint_filter_fn`` where timm
  has one (it converts OpenAI CLIP, DINOv2, OpenCLIP and older layouts and resizes patch embeddings).
  torchvision ResNet files use the same names as timm's ResNets, so they load this way too.
- **torchvision ViT layout** (``conv_proj``, ``encoder.layers.encoder_layer_i``): renamed to timm's names
  first (:func:`from_torchvision_vit`).
- **reidkit layout** (``stems.*``: a state dict saved from a reidkit backbone): loaded into the backbone as
  for the ResNets (:func:`~reidkit.models.weights.load_state_dict_into`).

A ViT is built at the patch grid of its file's position embeddings (:func:`checkpoint_grid`), so that
nothing is resampled at load time: a LUPerson ViT trained on 256 x 128 images keeps its 16 x 8 table and
runs unchanged at 256 x 128, resampled at other sizes.
"""
from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Mapping

from torch import Tensor, nn

from reidkit.models.weights import WeightsError, usable_tensors

log = logging.getLogger(__name__)

_TV_BLOCK = re.compile(r"^encoder\.layers\.encoder_layer_(\d+)\.(.+)$")
_TV_BLOCK_PARTS = {
    "ln_1.": "norm1.", "ln_2.": "norm2.",
    "self_attention.in_proj_weight": "attn.qkv.weight", "self_attention.in_proj_bias": "attn.qkv.bias",
    "self_attention.out_proj.": "attn.proj.",
    "mlp.0.": "mlp.fc1.", "mlp.3.": "mlp.fc2.", "mlp.linear_1.": "mlp.fc1.", "mlp.linear_2.": "mlp.fc2.",
}
_TV_TOP = {"conv_proj.": "patch_embed.proj.", "class_token": "cls_token", "encoder.pos_embedding": "pos_embed",
           "encoder.ln.": "norm.", "heads.": "head."}


def layout_of(state: Mapping[str, Tensor]) -> str:
    """``"reidkit"``, ``"torchvision-vit"`` or ``"timm"`` (everything else, torchvision ResNets included)."""
    if any(k.startswith("stems.") for k in state):
        return "reidkit"
    if "conv_proj.weight" in state and any(k.startswith("encoder.layers.") for k in state):
        return "torchvision-vit"
    return "timm"


def _rename(key: str, table: Mapping[str, str]) -> str | None:
    for old, new in table.items():
        if key == old or (old.endswith(".") and key.startswith(old)):
            return new + key[len(old):]
    return None


def from_torchvision_vit(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A torchvision ``VisionTransformer`` state dict under timm's names (the q, k, v order is the same)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        match = _TV_BLOCK.match(key)
        new = _rename(match.group(2), _TV_BLOCK_PARTS) if match else _rename(key, _TV_TOP)
        if new is None:
            raise WeightsError(f"torchvision ViT file: no timm name for tensor {key!r}")
        out[f"blocks.{match.group(1)}.{new}" if match else new] = value
    return out


def checkpoint_grid(state: Mapping[str, Tensor], model: nn.Module) -> tuple[int, int] | None:
    """The patch grid (rows, columns) of the file's ``pos_embed``, or None when it has none.

    A token count equal to the model's grid keeps that grid; otherwise a square grid, or else one twice as
    tall as wide (person images, e.g. 16 x 8 for 256 x 128 with 16-pixel patches).
    """
    pos = state.get("pos_embed")
    if pos is None or pos.dim() != 3:
        return None
    prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
    n = int(pos.shape[1]) - prefix
    grid = tuple(int(s) for s in model.patch_embed.grid_size)
    if n == grid[0] * grid[1]:
        return grid
    side = math.isqrt(n)
    if side * side == n:
        return side, side
    half = math.isqrt(n // 2)
    if n % 2 == 0 and 2 * half * half == n:
        return 2 * half, half
    raise WeightsError(f"cannot tell the patch grid of a position embedding of {n} patch tokens "
                       "(neither square nor twice as tall as wide)")


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    names = getattr(model, "pretrained_cfg", {}).get("classifier") or ("head", "fc")
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(f"{name}." for name in names) + ("head.", "fc.", "classifier.")


def load_into_timm(model: nn.Module, state: Mapping[str, Tensor], source: str, name: str) -> None:
    """Load a timm-layout ``state`` into a timm ``model`` (built without classifier) and report the rest.

    Raises :class:`WeightsError` when tensors differ in shape or the file shares no tensor with the model.
    """
    module = sys.modules.get(type(model).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    state = dict(state)
    if filter_fn is not None:
        try:
            state = dict(filter_fn(state, model))
        except Exception as e:  # a foreign file can break a filter in many ways
            raise WeightsError(f"{source} does not fit {name}: timm's checkpoint filter failed: "
                               f"{type(e).__name__}: {e}") from e
    own = model.state_dict()
    usable = usable_tensors(state, own, source, name)
    model.load_state_dict(usable, strict=False)
    classifier = _classifier_prefixes(model)
    unexpected = sorted(k for k in set(state) - set(own) if not k.startswith(classifier))
    missing = sorted(k for k in set(own) - set(usable) if not k.endswith("num_batches_tracked"))
    if missing:
        log.warning("%s: %d backbone tensors missing from the file, left at their initial values: %s%s",
                    source, len(missing), missing[:5], " ..." if len(missing) > 5 else "")
    if unexpected:
        log.warning("%s: %d tensors in the file are not in the backbone and were ignored: %s%s",
                    source, len(unexpected), unexpected[:5], " ..." if len(unexpected) > 5 else "")
    log.info("loaded %d tensors into %s from %s", len(usable), name, source)


__all__ = ["checkpoint_grid", "from_torchvision_vit", "layout_of", "load_into_timm"]
