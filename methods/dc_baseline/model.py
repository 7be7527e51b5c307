"""The two-stream network of ``dc-baseline``: modality stems, a shared trunk, per-modality branches.

::

    images[m] --stem_m--> x0[m] --(concatenated) layer1..layer3--> x3 --layer4-----> shared head
                                                                   \\--layer4_m--> branch m head

* The stems are the backbone's per-modality stems (AGW's two-stream design,
  github.com/mangye16/Cross-Modal-Re-ID-baseline).
* The trunk runs once on the concatenation of every modality, so its BatchNorm statistics mix modalities
  as in AGW.
* Each branch (intra-modality enhancing module; docs/methods.md, dc-baseline: the network) is a deep copy
  of ``layer4`` taken at build time, with its own pooling, BN-neck and identity classifier; it sees only
  its own modality's part of ``x3``.
* Classifiers are bias-free linear layers on the BN-neck feature (initialised N(0, 0.001), as AGW).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from reidkit.models.neck import build_neck


def make_classifier(dim: int, num_classes: int) -> nn.Linear:
    """Bias-free [D] -> [C] identity classifier, weights N(0, 0.001)."""
    layer = nn.Linear(dim, num_classes, bias=False)
    nn.init.normal_(layer.weight, std=0.001)
    return layer


class Head(nn.Module):
    """A stage + pooling + BN-neck + classifier: [B, C3, h, w] -> pooled, neck feature, logits."""

    def __init__(self, stage: nn.Module, pool: nn.Module, neck: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.stage, self.pool, self.neck, self.classifier = stage, pool, neck, classifier

    def forward(self, x3: Tensor) -> HeadOutput:
        pooled = self.pool(self.stage(x3))
        feat = self.neck(pooled)
        return HeadOutput(pool=pooled, feat=feat, logits=self.classifier(feat))


@dataclass
class HeadOutput:
    """pool: [B, D] pooled feature (the triplet's input); feat: [B, D] BN-neck feature; logits: [B, C]."""

    pool: Tensor
    feat: Tensor
    logits: Tensor


class TwoStreamNet(nn.Module):
    """Backbone (stems + shared layer1..layer4 + head) with a shared classifier and optional branches.

    Args:
        backbone: a reidkit ``ReIDBackbone`` (``forward_stem``, ``forward_layers``, ``layer4``, ``pool``,
            ``neck``, ``feat_dim``), preferably with per-modality stems.
        modalities: the modality names, in dataset order.
        num_classes: C, training identities.
        branches: build the per-modality ``layer4`` branches.

    Each branch pools with a copy of the backbone's own pooling (GeM / average for a ResNet, the class
    token or the token mean for a ViT), so a branch pools its stage's output as the backbone does.
    """

    def __init__(self, backbone: nn.Module, modalities: tuple[str, ...], num_classes: int, *,
                 branches: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.modalities = tuple(modalities)
        dim = backbone.feat_dim
        self.classifier = make_classifier(dim, num_classes)
        self.branches = nn.ModuleDict()
        if branches:
            for m in self.modalities:
                self.branches[m] = Head(copy.deepcopy(backbone.layer4), copy.deepcopy(backbone.pool),
                                        build_neck(dim), make_classifier(dim, num_classes))

    @property
    def feat_dim(self) -> int:
        return self.backbone.feat_dim

    def trunk(self, images: Mapping[str, Tensor]) -> tuple[Tensor, list[int]]:
        """``{m: [B_m, 3, H, W]}`` -> (x3 [sum B_m, C3, h, w] after the shared layer1..layer3, sizes B_m)."""
        stems = [self.backbone.forward_stem(images[m], m) for m in images]
        return self.backbone.forward_layers(torch.cat(stems, dim=0), 1, 3), [s.shape[0] for s in stems]

    def shared_head(self, x3: Tensor) -> HeadOutput:
        pooled = self.backbone.pool(self.backbone.layer4(x3))
        feat = self.backbone.neck(pooled)
        return HeadOutput(pool=pooled, feat=feat, logits=self.classifier(feat))

    def forward(self, images: Mapping[str, Tensor]) -> tuple[dict[str, HeadOutput], dict[str, HeadOutput]]:
        """Training pass over a batch of every modality.

        Args:
            images: ``{modality: [B_m, 3, H, W]}`` (one shared image size).
        Returns:
            ``(shared, branch)``: per modality, the shared head's outputs and (when branches exist) the
            branch head's outputs, each a :class:`HeadOutput` with B_m rows.
        """
        names = list(images)
        x3, sizes = self.trunk(images)
        out = self.shared_head(x3)
        pools, feats, logits = (torch.split(t, sizes) for t in (out.pool, out.feat, out.logits))
        shared = {m: HeadOutput(p, f, g) for m, p, f, g in zip(names, pools, feats, logits)}
        branch: dict[str, HeadOutput] = {}
        if len(self.branches):
            for m, part in zip(names, torch.split(x3, sizes)):
                branch[m] = self.branches[m](part)
        return shared, branch

    def features(self, images: Tensor, modality: str, *, with_branch: bool) -> tuple[Tensor, Tensor | None]:
        """Test-time BN-neck features of one modality: (shared [B, D], branch [B, D] or None)."""
        x3 = self.backbone.forward_layers(self.backbone.forward_stem(images, modality), 1, 3)
        shared = self.backbone.neck(self.backbone.pool(self.backbone.layer4(x3)))
        if not with_branch:
            return shared, None
        head = self.branches[modality]
        return shared, head.neck(head.pool(head.stage(x3)))
