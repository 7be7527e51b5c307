"""The IMSL method plugin: MMC pseudo-labels, MIL proxy losses, the SMR shape branch and MMRE weights.

Per epoch (``prepare_epoch``; docs/methods.md, IMSL: the epoch and the step): embed the training set;
cluster it with MMC (K clusters, every sample labelled); build the (cluster, modality) proxies and their
memory from the mean image features (MIL), the mask-cluster memory from the mean mask features (SMR), and
the MMRE weights. Per step (``training_step``): one forward of every modality's images (concatenated:
mixed-modality BatchNorm), one forward of each modality's masks, and the losses

    mil_offline + mil_online                         (MIL; or ``cluster_nce`` with mil: false)
    smr_ce + smr_align (the latter already x 0.25)   (SMR)

MIL terms are averaged within each modality and summed over modalities, as in the official code. Every
switch and official behaviour is documented in :mod:`reidkit_methods.imsl.config`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from reidkit.method import BuildContext, EpochContext, EpochPlan, Method, ModalBatch
from reidkit.models.memory import ClusterMemory, ProxyMemory
from reidkit_methods.imsl.config import RUN_DEFAULTS, IMSLConfig, cluster_count
from reidkit_methods.imsl.link import linked_clusters
from reidkit_methods.imsl.mil import offline_association_loss, online_association_loss, online_ranking
from reidkit_methods.imsl.mmc import mmc, modality_mean_centroids
from reidkit_methods.imsl.mmre import reliability_weights
from reidkit_methods.imsl.proxies import build_proxies, group_means
from reidkit_methods.imsl.smr import ProjectionHead, alignment_loss, frozen_bn_stats, silhouette

log = logging.getLogger(__name__)

def group_sum_of_means(per_sample: Tensor, sizes: Sequence[int]) -> Tensor:
    """Sum over consecutive groups (one per modality) of the group's mean; [sum(sizes)] -> scalar."""
    return sum(part.mean() for part in torch.split(per_sample, list(sizes)) if part.numel())


class IMSL(Method):
    """Inter-modality similarity learning (Pang et al., TCSVT 2024), for 2 or 3 modalities."""

    name: ClassVar[str] = "imsl"
    Config: ClassVar[type] = IMSLConfig
    uses_labels: ClassVar[bool] = False
    needs_masks: ClassVar[bool] = True
    run_defaults: ClassVar[Mapping[str, Any]] = RUN_DEFAULTS

    def __init__(self, cfg: IMSLConfig, build: BuildContext) -> None:
        super().__init__(cfg, build)
        self.modalities = tuple(build.modalities)
        self.backbone = build.build_backbone()
        self.projection = ProjectionHead(self.backbone.feat_dim) if cfg.smr else None
        self.k = cluster_count(cfg, num_train=build.num_train, num_train_ids=build.num_train_ids,
                               num_modalities=len(self.modalities))
        # shape maps feed SMR and, with modality_link=shape or cluster_shape_weight > 0, the clustering
        self.uses_shape = cfg.smr or cfg.modality_link == "shape" or cfg.cluster_shape_weight > 0
        # the mask inputs are declared here, once (the engine checks them before training): shapes come from
        # the dataset's masks, or from the silhouette estimate when shape_source=silhouette, or when
        # shape_source=auto and some training image has no mask
        missing = build.num_train - build.num_train_masks
        self.shape_from_image = self.uses_shape and (
            cfg.shape_source == "silhouette" or (cfg.shape_source == "auto" and missing > 0))
        if self.uses_shape and cfg.shape_source == "auto" and missing > 0:
            log.warning("%d of %d training images have no shape mask: SMR uses the built-in silhouette "
                        "estimate for all of them (set data.mask_root for real masks)", missing, build.num_train)
        self.needs_masks = self.uses_shape and not self.shape_from_image
        # per-epoch state, rebuilt by prepare_epoch (memories and buffers are not saved in checkpoints)
        dim = self.backbone.feat_dim
        self.proxy_memory = ProxyMemory(dim, temperature=cfg.mil_temperature, momentum=cfg.mil_momentum,
                                        hard_negatives=cfg.hard_negatives) if cfg.mil else None
        self.cluster_memory = None if cfg.mil else ClusterMemory(dim, temperature=cfg.cluster_temperature,
                                                                 momentum=cfg.cluster_momentum)
        self.mask_memory = ClusterMemory(dim, temperature=cfg.smr_temperature,
                                         momentum=cfg.smr_momentum) if cfg.smr else None
        self.register_buffer("sample_weight", torch.zeros(0), persistent=False)
        for name in ("sample_proxy", "proxy_modality"):
            self.register_buffer(name, torch.zeros(0, dtype=torch.int64), persistent=False)

    # -- per epoch -----------------------------------------------------------------------------------
    def prepare_epoch(self, ctx: EpochContext) -> EpochPlan:
        cfg = self.cfg
        device = ctx.device
        num_modalities = len(ctx.modalities)
        modality_ids = torch.as_tensor(ctx.modality_ids, dtype=torch.int64, device=device)
        feats = ctx.features().to(device).float()

        info: dict[str, float] = {}
        mask_feats = None
        if self.uses_shape:
            t1 = time.perf_counter()
            mask_feats = self._mask_features(ctx).to(device).float()
            info["time_mask_features_s"] = time.perf_counter() - t1
            info["shape_from_image"] = float(self.shape_from_image)

        t0 = time.perf_counter()
        if cfg.modality_link == "shape":
            linked = linked_clusters(feats, mask_feats, modality_ids, self.k, iterations=cfg.kmeans_iterations,
                                     rounds=cfg.link_rounds, threshold=cfg.link_threshold, generator=ctx.generator)
            labels, centroids = linked.labels, None
            num_clusters = int(labels.max()) + 1
            info["links"] = float(len(linked.links))
        else:
            cluster_on = feats
            if cfg.cluster_shape_weight:
                cluster_on = F.normalize(torch.cat([feats, cfg.cluster_shape_weight * mask_feats], dim=1), dim=1)
            labels, centroids = self._cluster(cluster_on, modality_ids, ctx.generator)
            num_clusters = int(centroids.shape[0])
            if cfg.cluster_shape_weight:
                centroids = None  # in the joint image + shape space
        info.update({"k": float(self.k), "time_cluster_s": time.perf_counter() - t0})

        if cfg.mil:
            proxies = build_proxies(labels, modality_ids, num_modalities)
            self.proxy_memory.reset(group_means(feats, proxies.proxy_of_sample, proxies.num_proxies),
                                    proxies.proxy_cluster)
            self.sample_proxy = proxies.proxy_of_sample
            self.proxy_modality = proxies.proxy_modality
            info["proxies"] = float(proxies.num_proxies)
        else:
            self.cluster_memory.reset(group_means(feats, labels, num_clusters))

        if cfg.smr:
            self.mask_memory.reset(group_means(mask_feats, labels, num_clusters))

        if cfg.mmre:
            if centroids is None:  # MMRE's distances are in the image-feature space; computed only when needed
                centroids = modality_mean_centroids(feats, labels, modality_ids, num_clusters, num_modalities)[0]
            self.sample_weight = reliability_weights(
                cfg.mmre_reliability, feats=feats, labels=labels, centroids=centroids, modality_ids=modality_ids,
                num_modalities=num_modalities, mask_feats=mask_feats,
                mask_centroids=self.mask_memory.features if cfg.smr else None)
            info["mmre_weight_min"] = float(self.sample_weight.min())
            info["mmre_weight_max"] = float(self.sample_weight.max())
        return EpochPlan(labels=labels.cpu().numpy(), sampler="per-modality", info=info)

    def _cluster(self, features: Tensor, modality_ids: Tensor, generator) -> tuple[Tensor, Tensor]:
        """MMC's [N] labels and [K, D] centroids of ``features`` (benchmarks/oracle_labels.py overrides it)."""
        return mmc(features, modality_ids, self.k, iterations=self.cfg.kmeans_iterations, generator=generator,
                   update=self.cfg.clustering, init=self.cfg.kmeans_init)

    def _mask_features(self, ctx: EpochContext) -> Tensor:
        """[N, D] features of the training shape maps: the dataset's masks or the silhouette estimate."""
        if self.shape_from_image:
            return ctx.extract(view=silhouette, source="image")
        return ctx.extract(source="mask")

    # -- per step ------------------------------------------------------------------------------------
    def _forward_images(self, images: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
        if self.cfg.mixed_bn:
            return self.backbone.forward_multi(images)
        return {m: self.backbone(x, m) for m, x in images.items()}

    def training_step(self, batch: Mapping[str, ModalBatch]) -> dict[str, Tensor]:
        cfg = self.cfg
        order = [m for m in self.modalities if m in batch]
        sizes = [len(batch[m]) for m in order]
        outs = self._forward_images({m: batch[m].images for m in order})
        feats = F.normalize(torch.cat([outs[m]["feat"] for m in order]), dim=1)
        labels = torch.cat([batch[m].labels for m in order])
        indices = torch.cat([batch[m].indices for m in order])
        weight = self.sample_weight[indices] if cfg.mmre else None

        def weighted(per_sample: Tensor) -> Tensor:
            return per_sample if weight is None else per_sample * weight.to(per_sample.dtype)

        losses: dict[str, Tensor] = {}
        if cfg.mil:
            losses.update(self._mil_losses(feats, labels, indices, sizes, weighted))
        else:
            nce = self.cluster_memory(feats, labels, reduction="none")
            losses["cluster_nce"] = group_sum_of_means(weighted(nce), sizes)
        if cfg.smr:
            pooled = torch.cat([outs[m]["pool"] for m in order])
            losses.update(self._smr_losses(batch, order, pooled, labels, weighted))
        return losses

    def _mil_losses(self, feats: Tensor, labels: Tensor, indices: Tensor, sizes: Sequence[int],
                    weighted: Callable[[Tensor], Tensor]) -> dict[str, Tensor]:
        cfg = self.cfg
        own = self.sample_proxy[indices]
        memory = self.proxy_memory
        sims = memory.similarities(feats, own)  # once per step: the memory moves once, in backward
        ranking = online_ranking(sims, memory.features, own, cfg.online_beta)
        offline = offline_association_loss(sims, labels, memory.proxy_cluster, temperature=cfg.mil_temperature,
                                           hard_negatives=cfg.hard_negatives)
        online = online_association_loss(sims, ranking, self.proxy_modality,
                                         num_modalities=len(self.modalities),
                                         temperature=cfg.mil_temperature, hard_negatives=cfg.hard_negatives,
                                         positives=cfg.online_positives or len(self.modalities))
        out = {}
        if cfg.offline_weight:
            out["mil_offline"] = cfg.offline_weight * group_sum_of_means(weighted(offline), sizes)
        if cfg.online_weight:
            out["mil_online"] = cfg.online_weight * group_sum_of_means(weighted(online), sizes)
        return out

    def _smr_losses(self, batch: Mapping[str, ModalBatch], order: Sequence[str], pooled: Tensor, labels: Tensor,
                    weighted: Callable[[Tensor], Tensor]) -> dict[str, Tensor]:
        cfg = self.cfg
        parts = []
        with frozen_bn_stats(self.backbone, frozen=not cfg.mask_bn_stats):
            for m in order:  # one forward per modality, as the official code does for masks
                b = batch[m]
                masks = silhouette(b.images) if self.shape_from_image else b.masks  # the engine checked them
                parts.append(self.backbone(masks, m)["feat"])
        mask_feats = F.normalize(torch.cat(parts), dim=1)
        ce = self.mask_memory(mask_feats, labels, reduction="none", label_smoothing=cfg.smr_label_smoothing)
        out = {"smr_ce": weighted(ce).mean()}
        if cfg.smr_align_weight:
            out["smr_align"] = cfg.smr_align_weight * alignment_loss(self.projection(pooled), mask_feats)
        return out

    # -- hooks ---------------------------------------------------------------------------------------
    def train_transforms(self, modality: str) -> Sequence[Callable] | None:
        """One view per image; ``augment_order`` (config.py) sets the order and the erasing draw.

        official: the pipelines of the official ``train.py`` (github.com/zqpang/IMSL): random erasing
        with the official draw on every modality, then ChannelExchange(gray=2) on visible images (the
        modality whose role is colour, ``BuildContext.colour_modality``).
        exchange-first: ChannelExchange(gray=2) before torchvision's erasing on visible images, the
        standard pipeline on the others.
        """
        from reidkit.data.transforms import ChannelExchange, train_transform

        colour = modality == self.build.colour_modality
        exchange = [ChannelExchange(gray=2)] if self.cfg.channel_exchange and colour else []
        if self.cfg.augment_order == "exchange-first":
            return [train_transform(self.build.image_size, extra=exchange)] if exchange else None
        return [train_transform(self.build.image_size, after=exchange, erasing="uniform")]
