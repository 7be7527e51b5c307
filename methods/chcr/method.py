"""CHCR: cross-modality hierarchical clustering and inter-channel refinement (Pang et al., TCSVT 2024).

A grounded reconstruction (no public code; docs/methods.md, CHCR). Each epoch (``prepare_epoch``):

1. embed every training image (both modalities) with the current model;
2. **joint clustering** (baseline B): one k-reciprocal Jaccard + DBSCAN over the union, one label space;
3. **hierarchy** (C): merge visible-only and infrared-only clusters whose modality-centred centroids are
   mutual nearest neighbours (``cross-merge``), or centre the modalities before step 2 (``modality-centred``);
4. **inter-channel refinement** (D): cluster the R, G and B single-channel views of the visible images the
   same way, drop the visible samples whose channel clusterings disagree with their main label;
5. rebuild the cluster memory (one centroid per cluster) and, with the hierarchy, the per-modality
   centroids of the mixed clusters for the modality contrastive loss.

``training_step``: cluster-memory InfoNCE on both modalities (visible images channel-exchanged) plus,
with the hierarchy, ``mc_weight`` x the modality contrastive loss (:mod:`.losses`).
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from reidkit.cluster import centre_by_modality, cluster_centroids, modality_centroids, relabel
from reidkit.config import ConfigError
from reidkit.method import BuildContext, EpochContext, EpochPlan, Method, ModalBatch
from reidkit.models.memory import ClusterMemory, ProxyMemory

from .clustering import joint_cluster
from .config import RUN_DEFAULTS, CHCRConfig
from .hierarchy import cross_modality_merge, mixed_share
from .losses import centroid_entries, modality_contrastive_loss
from .refinement import refine_labels

log = logging.getLogger(__name__)

CHANNELS = ("red", "green", "blue")


def _num_clusters(labels: np.ndarray) -> int:
    return len(np.unique(labels[labels >= 0]))


def as_instances(labels: np.ndarray) -> np.ndarray:
    """[N] consecutive labels 0..K-1 (-1 = none) -> every unlabelled sample its own new label K, K+1, ..."""
    out = np.array(labels, dtype=np.int64, copy=True)
    free = out < 0
    out[free] = _num_clusters(out) + np.arange(int(free.sum()))
    return out


class CHCR(Method):
    """The ``chcr`` method plugin; options in :class:`~.config.CHCRConfig`."""

    name = "chcr"
    Config = CHCRConfig
    uses_labels = False
    run_defaults = RUN_DEFAULTS

    def __init__(self, cfg: CHCRConfig, build: BuildContext) -> None:
        super().__init__(cfg, build)
        modalities = tuple(build.modalities)
        colour = build.colour_modality
        if len(modalities) != 2 or colour is None:
            roles = ", ".join(f"{m}: {r}" for m, r in build.roles.items())
            raise ConfigError(f"chcr is a visible-infrared method: it needs two modalities, one of them "
                              f"carrying colour (role 'colour'); this dataset has {roles}. A generic folder "
                              "names its colour modality with dataset_args.colour_modality")
        #: the modality that carries colour, whatever the dataset calls it (BuildContext.colour_modality)
        self.visible = colour
        self.other = next(m for m in modalities if m != colour)
        self.backbone = build.build_backbone()
        dim = self.backbone.feat_dim
        # per-epoch state, rebuilt in prepare_epoch (non-persistent: the next epoch re-clusters anyway)
        self.memory = ClusterMemory(dim, 0, temperature=cfg.temperature, momentum=cfg.momentum)
        self.modality_memory = ProxyMemory(dim, 0, temperature=cfg.mc_temperature, momentum=cfg.momentum)
        self.register_buffer("mixed", torch.zeros(0, dtype=torch.bool), persistent=False)
        # the cross-merge on mask features embeds the shape masks: the engine checks the dataset has them
        self.needs_mask_features = cfg.hierarchy == "cross-merge" and cfg.merge_features == "masks"

    # -- the epoch plan -------------------------------------------------------------------------------------
    @property
    def uses_modality_loss(self) -> bool:
        return self.cfg.hierarchy != "none" and self.cfg.mc_weight > 0

    def _cluster(self, features: Tensor, modality_ids: np.ndarray):
        cfg = self.cfg
        if cfg.hierarchy == "modality-centred":
            features = centre_by_modality(features, modality_ids)
        return joint_cluster(features, eps=cfg.eps, min_samples=cfg.min_samples, k1=cfg.k1, k2=cfg.k2,
                             eps_step=cfg.eps_fallback, eps_max=cfg.eps_max)

    def _channel_labels(self, ctx: EpochContext, features: Tensor, visible: np.ndarray,
                        info: dict) -> list[np.ndarray]:
        """One [N] label vector per channel view of the visible images (clustered like the main features)."""
        from reidkit.data.transforms import channel_view

        out = []
        extract_s = cluster_s = 0.0
        for channel in range(len(CHANNELS)):
            t0 = time.perf_counter()
            view = ctx.extract(view=functools.partial(channel_view, channel=channel), indices=visible)
            t1 = time.perf_counter()
            labels = np.full(len(features), -1, dtype=np.int64)
            if self.cfg.channels_with_infrared:
                mixed = features.clone()
                mixed[torch.as_tensor(visible, device=features.device)] = view.to(features.device)
                labels = self._cluster(mixed, ctx.modality_ids).labels
            else:
                labels[visible] = self._cluster(view, ctx.modality_ids[visible]).labels
            cluster_s += time.perf_counter() - t1
            extract_s += t1 - t0
            out.append(labels)
        info["time_channel_extract_s"] = extract_s
        info["time_cluster_s"] += cluster_s
        return out

    @staticmethod
    def _mask_features(ctx: EpochContext, info: dict) -> Tensor:
        """[N, D] features of the training images' shape masks (``merge_features: masks``)."""
        t0 = time.perf_counter()
        out = ctx.extract(source="mask")
        info["time_mask_features_s"] = time.perf_counter() - t0
        return out

    def prepare_epoch(self, ctx: EpochContext) -> EpochPlan:
        cfg = self.cfg
        features = ctx.features()
        modality_ids = ctx.modality_ids
        vis_id = ctx.modalities.index(self.visible)
        other_id = ctx.modalities.index(self.other)
        is_visible = modality_ids == vis_id
        info: dict[str, float] = {}
        # the cross-merge compares the image features' centroids, or the masks' (embedded before the clock
        # starts, so that time_cluster_s stays the clustering's own time)
        match_on = features
        if self.needs_mask_features:
            match_on = self._mask_features(ctx, info)

        t0 = time.perf_counter()
        level1 = self._cluster(features, modality_ids)
        labels = relabel(level1.labels)
        # each stage's labels, for callbacks and diagnostics (EpochPlan.details)
        details = {"level1": labels}
        info.update(eps_used=level1.eps, level1_clusters=int(labels.max()) + 1,
                    level1_mixed_share=mixed_share(labels, modality_ids, 2))
        if cfg.hierarchy == "cross-merge":
            merge = cross_modality_merge(labels, match_on, modality_ids, first=vis_id, second=other_id,
                                         threshold=cfg.merge_threshold, rounds=cfg.merge_rounds,
                                         centre=cfg.centre_modalities)
            labels = merge.labels
            details.update(hierarchy=labels, merged_pairs=merge.pairs)
            info.update(merged_pairs=len(merge.pairs), single_modality_clusters=merge.single_modality,
                        merge_similarity=float(np.mean([p[2] for p in merge.pairs])) if merge.pairs else 0.0)
        info["time_cluster_s"] = time.perf_counter() - t0

        info["refine_drop_rate"] = 0.0
        if cfg.refinement != "none" and (labels >= 0).any():
            channels = self._channel_labels(ctx, features, np.flatnonzero(is_visible), info)
            t1 = time.perf_counter()
            refined = refine_labels(labels, channels, is_visible, rule=cfg.refinement,
                                    threshold=cfg.soft_threshold)
            details.update(channels=channels, dropped=refined.dropped)
            info["time_cluster_s"] += time.perf_counter() - t1
            # a filter that leaves fewer than two clusters removes all contrast: keep the labels then
            # (only seen with an untrained model on toy data; logged as refine_skipped)
            info["refine_skipped"] = float(_num_clusters(refined.labels) < min(2, _num_clusters(labels)))
            if not info["refine_skipped"]:
                info["refine_drop_rate"] = refined.drop_rate
                labels = relabel(refined.labels)

        # the clustering's own counts (the engine's "clusters" also counts instance entries)
        info.update(pseudo_clusters=_num_clusters(labels), pseudo_outliers=float(np.mean(labels < 0)),
                    pseudo_mixed_share=mixed_share(labels, modality_ids, 2))
        if cfg.outliers == "instances":
            labels = as_instances(labels)
        self.reset_memories(features, labels, is_visible)
        info["mixed_clusters"] = int(self.mixed.sum())
        log.info("epoch %d: %d clusters (%d mixed), %.1f%% outliers, refinement dropped %.1f%%", ctx.epoch,
                 info["pseudo_clusters"], info["mixed_clusters"], 100 * info["pseudo_outliers"],
                 100 * info["refine_drop_rate"])
        return EpochPlan(labels=labels, sampler="per-modality", info=info, details=details)

    def reset_memories(self, features: Tensor, labels: np.ndarray, is_visible: np.ndarray) -> None:
        """Rebuild the memories from [N, D] features and [N] labels (-1 ignored): one centroid per cluster,
        and the (cluster, modality) centroids of the modality contrastive loss."""
        k = int(labels.max()) + 1 if (labels >= 0).any() else 0
        features = features.to(self.build.device)
        self.memory.reset(cluster_centroids(features, labels, k))
        side = np.where(is_visible, 0, 1)  # 0 visible, 1 the other modality
        centroids, present = modality_centroids(features, labels, side, k, 2)
        self.modality_memory.reset(*centroid_entries(centroids))
        self.mixed = present.all(dim=1).to(self.build.device)

    # -- training -------------------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, ModalBatch]) -> dict[str, Tensor]:
        images = {m: torch.cat(b.views) for m, b in batch.items()}
        out = self.backbone.forward_multi(images)
        feats = {m: F.normalize(out[m]["feat"], dim=1) for m in batch}
        targets = {m: b.labels.repeat(len(b.views)) for m, b in batch.items()}
        losses = {"cluster": self.memory(torch.cat([feats[m] for m in batch]),
                                         torch.cat([targets[m] for m in batch]))}
        if self.uses_modality_loss:
            terms = [modality_contrastive_loss(self.modality_memory, feats[m], targets[m],
                                               0 if m == self.visible else 1, self.mixed) for m in batch]
            losses["modality"] = self.cfg.mc_weight * torch.stack(terms).mean()
        return losses

    # -- views ------------------------------------------------------------------------------------------------
    def train_transforms(self, modality: str) -> Sequence:
        from reidkit.data.transforms import (
            ChannelAdapGray,
            ChannelExchange,
            ChannelRandomErasing,
            train_transform,
        )

        size = self.build.image_size
        # ChannelRandomErasing (CAJ/ADCA) replaces the pipeline's own RandomErasing
        erase = [ChannelRandomErasing(self.cfg.channel_erasing)] if self.cfg.channel_erasing > 0 else []
        if modality != self.visible:
            return [train_transform(size, extra=[ChannelAdapGray(self.cfg.infrared_gray), *erase], erase_p=0.0)]
        views = {"plain": [], "exchange": [ChannelExchange(gray=2)]}
        return [train_transform(size, extra=[*views[v], *erase], erase_p=0.0) for v in self.cfg.visible_views]
