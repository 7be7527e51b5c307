"""``dc-baseline``: the supervised distribution-consistency reference (Zhang et al., IJMLC 2025).

No public code or full text was found; this is reidkit's reconstruction of the abstract on the AGW
two-stream design (docs/methods.md, dc-baseline):

* shared feature: identity cross-entropy (label smoothing) on the BN-neck feature, and a triplet loss on
  the pooled feature of the whole cross-modality batch (AGW's weighted-regularisation triplet by default);
* intra-modality enhancing module (``branches``): a ``layer4`` copy per modality with its own identity
  classifier and an intra-modality triplet;
* modality-invariant module (``consistency``): per identity in the batch, the divergence between the
  Gaussians of its shared features in two modalities (symmetric KL or 2-Wasserstein), averaged over
  identities and modality pairs;
* identity-aligned P x K sampling: every step draws the same P identities in every modality, K each.

Total loss: ``id_shared + tri_shared + branch_weight * sum_m (id_m + tri_intra_m) + lambda_g * gauss``.
Loss keys: ``id_shared``, ``tri_shared``, ``id_<modality>``, ``tri_intra_<modality>``, ``gauss``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidkit.method import BuildContext, EpochContext, EpochPlan, Method, ModalBatch

from .config import RUN_DEFAULTS, DCBaselineConfig
from .gaussian import distribution_consistency
from .model import TwoStreamNet
from .triplet import triplet_loss

log = logging.getLogger(__name__)


class DCBaseline(Method):
    """Supervised two-stream baseline with intra-modality branches and Gaussian distribution consistency."""

    name = "dc-baseline"
    Config = DCBaselineConfig
    uses_labels = True
    run_defaults = RUN_DEFAULTS

    def __init__(self, cfg: DCBaselineConfig, build: BuildContext) -> None:
        super().__init__(cfg, build)
        if cfg.test_feature == "shared+branch" and not cfg.branches:
            raise ValueError("method_args.test_feature=shared+branch needs method_args.branches=true")
        if not build.num_train_ids:
            raise ValueError("dc-baseline needs the number of training identities "
                             "(BuildContext.num_train_ids)")
        if len(build.modalities) < 2:
            raise ValueError(f"dc-baseline is cross-modality: it needs >= 2 modalities, "
                             f"got {build.modalities}")
        self.num_classes = int(build.num_train_ids)
        backbone = build.build_backbone()
        self.net = TwoStreamNet(backbone, build.modalities, self.num_classes, branches=cfg.branches)
        self._warned_no_consistency = False

    # -- the epoch ------------------------------------------------------------------------------------
    def prepare_epoch(self, ctx: EpochContext) -> EpochPlan:
        """Ground-truth identities relabelled 0..C-1 (sorted: stable across epochs); aligned sampling."""
        truth = ctx.ground_truth()
        ids, labels = np.unique(truth, return_inverse=True)
        if len(ids) > self.num_classes:
            raise ValueError(f"the training set has {len(ids)} identities but the classifiers were built for "
                             f"{self.num_classes}")
        per_modality = [set(labels[ctx.indices_of(m)].tolist()) for m in ctx.modalities]
        in_all = set.intersection(*per_modality)
        info = {"identities": float(len(ids)), "identities_in_all_modalities": float(len(in_all))}
        return EpochPlan(labels=labels, sampler="aligned", info=info)

    # -- training -------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, ModalBatch]) -> dict[str, Tensor]:
        cfg = self.cfg
        names = list(batch)
        labels = {m: batch[m].labels for m in names}
        shared, branch = self.net({m: batch[m].images for m in names})
        all_labels = torch.cat([labels[m] for m in names])
        groups = torch.cat([torch.full_like(labels[m], i) for i, m in enumerate(names)])

        losses = {
            "id_shared": F.cross_entropy(torch.cat([shared[m].logits for m in names]), all_labels,
                                         label_smoothing=cfg.label_smoothing),
            "tri_shared": triplet_loss(torch.cat([shared[m].pool for m in names]), all_labels, groups,
                                       kind=cfg.triplet, scope=cfg.triplet_scope, margin=cfg.triplet_margin),
        }
        for m, out in branch.items():
            own = torch.zeros_like(labels[m])
            losses[f"id_{m}"] = cfg.branch_weight * F.cross_entropy(out.logits, labels[m],
                                                                    label_smoothing=cfg.label_smoothing)
            losses[f"tri_intra_{m}"] = cfg.branch_weight * triplet_loss(
                out.pool, labels[m], own, kind=cfg.triplet, scope="intra", margin=cfg.triplet_margin)
        if cfg.consistency != "off":
            feats = {m: shared[m].feat for m in names}
            losses["gauss"] = cfg.consistency_weight * self._consistency(feats, labels)
        return losses

    def _consistency(self, feats: dict[str, Tensor], labels: dict[str, Tensor]) -> Tensor:
        if self.cfg.consistency_space == "normalized":
            feats = {m: F.normalize(f, dim=1) for m, f in feats.items()}
        loss, terms = distribution_consistency(feats, labels, form=self.cfg.consistency,
                                               eps=self.cfg.resolved_variance_eps(), reduction="mean")
        if terms == 0 and not self._warned_no_consistency:
            log.warning("dc-baseline: no identity has 2 samples in two modalities of the batch, so the "
                        "distribution-consistency loss is 0 (raise data.instances to >= 2)")
            self._warned_no_consistency = True
        return loss

    def train_transforms(self, modality: str) -> list[Callable] | None:
        """The standard pipeline; visible images (the modality whose role is colour) with
        ``channel_exchange_p`` > 0 also get random channels."""
        p = self.cfg.channel_exchange_p
        if p == 0 or modality != self.build.colour_modality:
            return None
        from torchvision.transforms import RandomApply

        from reidkit.data.transforms import ChannelExchange, train_transform

        return [train_transform(self.build.image_size, extra=[RandomApply([ChannelExchange(gray=3)], p=p)])]

    # -- evaluation -----------------------------------------------------------------------------------
    def embed(self, images: Tensor, modality: str) -> Tensor:
        """[B, 3, H, W] -> [B, D] shared feature, or [B, 2D] shared + own-branch feature; L2-normalised."""
        with_branch = self.cfg.test_feature == "shared+branch"
        shared, own = self.net.features(images, modality, with_branch=with_branch)
        feats = F.normalize(shared, dim=1)
        if own is not None:
            feats = F.normalize(torch.cat([feats, F.normalize(own, dim=1)], dim=1), dim=1)
        return feats

    def param_groups(self) -> list[dict]:
        """One group, or with ``backbone_lr`` two: backbone convolutions (stems, trunk, branch stages) at
        ``backbone_lr`` and the heads (BN-necks, classifiers) at ``optim.lr`` (AGW's split)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if self.cfg.backbone_lr is None:
            return [{"params": params}]
        convs = {id(p) for p in self.net.backbone.parameters()}
        for head in self.net.branches.values():
            convs |= {id(p) for p in head.stage.parameters()}
        convs -= {id(p) for p in self.net.backbone.neck.parameters()}
        return [{"params": [p for p in params if id(p) in convs], "lr": self.cfg.backbone_lr},
                {"params": [p for p in params if id(p) not in convs]}]
