"""A timm Vision Transformer mapped onto the reidkit backbone contract.

timm's ``VisionTransformer`` (ViT, DeiT, CLIP and OpenCLIP image towers, DINO/DINOv2, MAE, register-token
ViTs: github.com/huggingface/pytorch-image-models) is cut into the same pieces as a ResNet:

==================  =======================================================================================
reidkit             ViT
==================  =======================================================================================
stem (per modality) patch embedding (one copy per modality with ``model.stems: per-modality``)
forward_stem        patch embedding, then the shared class/register tokens, position embedding, ``norm_pre``
layer1..layer4      the transformer blocks in four consecutive groups (depth 12: 3 + 3 + 3 + 3);
                    ``layer4`` ends with the final norm
pool                token pooling as the timm model pools (``global_pool``): the class token, or the mean of
                    the patch tokens (then timm's ``fc_norm``)
neck                the BN-neck over the embedding (D = ``embed_dim``)
==================  =======================================================================================

Between stages the tokens travel as a ``[B, D, 1, T]`` map (channels first, prefix tokens first), so code
written for ResNet maps (concatenating modalities, splitting a batch, GeM or average pooling a forked
``layer4``) runs unchanged; :class:`TokenPooling` reads the class token from that map.

A ViT runs at any image size whose sides are multiples of the patch size: the position embeddings keep
the grid they were trained at and are resampled to the input's grid at every forward (bicubic, as timm's
``dynamic_img_size`` does; the identity when the grids match). Under tracing (``reidkit export``) the
resampled table becomes a constant of the graph, since an exported model has one image size.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from reidkit.models.neck import build_neck
from reidkit.models.staged import BackboneSpec, StagedBackbone

TOKEN_POOLS = ("token", "avg")


def is_supported_vit(model: nn.Module) -> bool:
    """A timm VisionTransformer whose token embedding is the base class's (no distillation token, no
    attention pooling head replacing the tokens' order)."""
    return (isinstance(model, VisionTransformer)
            and type(model)._pos_embed is VisionTransformer._pos_embed
            and type(model).forward_features is VisionTransformer.forward_features)


def stage_sizes(depth: int, stages: int = 4) -> list[int]:
    """Blocks per stage, as equal as possible, the earlier stages taking the remainder (14 -> 4, 4, 3, 3)."""
    if depth < stages:
        raise ValueError(f"a transformer of depth {depth} cannot be cut into {stages} stages")
    return [depth // stages + (1 if i < depth % stages else 0) for i in range(stages)]


def _tokens(x: Tensor) -> Tensor:
    """[B, D, 1, T] token map -> [B, T, D] tokens (a view)."""
    return x.flatten(2).transpose(1, 2)


def _token_map(tokens: Tensor) -> Tensor:
    """[B, T, D] tokens -> [B, D, 1, T] token map (a view)."""
    return tokens.transpose(1, 2).unsqueeze(2)


class TokenStage(nn.Module):
    """A group of transformer blocks (and, for the last stage, the final norm) on a [B, D, 1, T] map."""

    def __init__(self, blocks: Sequence[nn.Module], norm: nn.Module | None = None) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.norm = norm if norm is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return _token_map(self.norm(self.blocks(_tokens(x))))


class TokenPooling(nn.Module):
    """[B, D, 1, T] -> [B, D]: the class token (``"token"``) or the mean of the patch tokens (``"avg"``),
    then ``norm`` (timm's ``fc_norm``; the identity for most ViTs)."""

    def __init__(self, mode: str, num_prefix_tokens: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        if mode not in TOKEN_POOLS:
            raise ValueError(f"token pooling must be one of {TOKEN_POOLS}, got {mode!r}")
        if mode == "token" and num_prefix_tokens < 1:
            raise ValueError("class-token pooling needs a class token")
        self.mode = mode
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.norm = norm if norm is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        tokens = x.flatten(2)  # [B, D, T]
        pooled = tokens[:, :, 0] if self.mode == "token" else tokens[:, :, self.num_prefix_tokens:].mean(dim=2)
        return self.norm(pooled)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, num_prefix_tokens={self.num_prefix_tokens}"


def token_pool_mode(model: VisionTransformer) -> str:
    """How the timm model pools: ``"token"`` (class token) or ``"avg"``; other pools fall back to these."""
    mode = model.global_pool or ("token" if model.cls_token is not None else "avg")
    if mode not in TOKEN_POOLS or (mode == "token" and model.cls_token is None):
        mode = "token" if model.cls_token is not None else "avg"
    return mode


class TimmViTBackbone(StagedBackbone):
    """A timm ``VisionTransformer`` as a reidkit backbone (module docstring: the mapping).

    Attributes:
        feat_dim: D, the transformer width.
        grid_size: (rows, columns) of the patch grid the position embeddings were made for.
        num_prefix_tokens: class and register tokens before the patch tokens.
    """

    def __init__(self, model: VisionTransformer, spec: BackboneSpec, modalities: Sequence[str], *,
                 stems: str = "shared", stem_batch: str = "joint", bnneck: bool = True) -> None:
        super().__init__(spec, modalities, stems=stems, stem_batch=stem_batch)
        if not is_supported_vit(model):
            raise ValueError(f"{spec.name}: not a plain timm VisionTransformer")
        if not getattr(model, "dynamic_img_size", False):
            raise ValueError(f"{spec.name}: build the timm model with dynamic_img_size=True")
        self.feat_dim = int(model.embed_dim)
        self.num_prefix_tokens = int(model.num_prefix_tokens)
        self.no_embed_class = bool(model.no_embed_class)
        self.grid_size = tuple(int(s) for s in model.patch_embed.grid_size)
        self.stems = nn.ModuleDict({key: copy.deepcopy(model.patch_embed) for key in self.stem_keys()})
        self.cls_token = model.cls_token
        self.reg_token = model.reg_token
        self.pos_embed = model.pos_embed
        self.pos_drop, self.patch_drop, self.norm_pre = model.pos_drop, model.patch_drop, model.norm_pre
        blocks = list(model.blocks)
        start = 0
        for i, size in enumerate(stage_sizes(len(blocks)), start=1):
            norm = model.norm if i == 4 else None
            setattr(self, f"layer{i}", TokenStage(blocks[start:start + size], norm))
            start += size
        self.pool = TokenPooling(token_pool_mode(model), self.num_prefix_tokens, model.fc_norm)
        self.neck = build_neck(self.feat_dim, bnneck)

    def position_table(self, grid: tuple[int, int]) -> Tensor | None:
        """The position embeddings for a ``grid`` of patches ([1, T or grid tokens, D]), resampled as timm does."""
        if self.pos_embed is None:
            return None
        if tuple(grid) == self.grid_size:
            return self.pos_embed
        prefix = 0 if self.no_embed_class else self.num_prefix_tokens
        if not torch.jit.is_tracing():
            return resample_abs_pos_embed(self.pos_embed, new_size=list(grid), old_size=list(self.grid_size),
                                          num_prefix_tokens=prefix)
        # tracing (export): one image size, so the resampled table is a constant; antialiased bicubic
        # resizing has no ONNX operator.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            table = resample_abs_pos_embed(self.pos_embed.detach(), new_size=list(grid),
                                           old_size=list(self.grid_size), num_prefix_tokens=prefix)
            return torch.from_numpy(table.cpu().numpy().copy()).to(self.pos_embed.device)

    def forward_stem(self, images: Tensor, modality: str) -> Tensor:
        """[B, 3, H, W] -> [B, D, 1, T] tokens (prefix tokens, then the H/p x W/p patches row by row)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got shape {tuple(images.shape)}")
        x = self.stem(modality)(images)  # [B, rows, cols, D] (timm's dynamic-size patch embedding: NHWC)
        b, rows, cols, dim = x.shape
        x = x.reshape(b, rows * cols, dim)
        pos = self.position_table((rows, cols))
        prefix = [t.expand(b, -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if self.no_embed_class:
            x = x if pos is None else x + pos
            x = torch.cat([*prefix, x], dim=1) if prefix else x
        else:
            x = torch.cat([*prefix, x], dim=1) if prefix else x
            x = x if pos is None else x + pos
        x = self.norm_pre(self.patch_drop(self.pos_drop(x)))
        return _token_map(x)


__all__ = ["TOKEN_POOLS", "TimmViTBackbone", "TokenPooling", "TokenStage", "is_supported_vit", "stage_sizes",
           "token_pool_mode"]
