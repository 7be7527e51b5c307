"""CHCR's options (``method_args``) and its CPU-friendly run defaults.

Every component of the method is a switch, so the ablation ladder of the abstract is a set of overrides:

=====================  ================================  =====================================
rung                   ``hierarchy``                     ``refinement``
=====================  ================================  =====================================
baseline (B)           ``none``                          ``none``
+ hierarchical (B+C)   ``cross-merge``                   ``none``
+ refinement (B+D)     ``none``                          ``strict``
full (B+C+D)           ``cross-merge``                   ``strict``
=====================  ================================  =====================================

The modality contrastive loss belongs to the hierarchy (docs/methods.md, CHCR: C, the hierarchy): it is active when
``hierarchy`` is not ``none`` and ``mc_weight`` > 0.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reidkit.config import ConfigError, option

VISIBLE_VIEWS = ("plain", "exchange")
MERGE_FEATURES = ("image", "masks")


@dataclass(frozen=True)
class CHCRConfig:
    """Options of the ``chcr`` method; every field has a default (the synthetic CPU setting)."""

    # -- joint clustering (baseline; docs/methods.md, CHCR: B) ------------------------------------------
    eps: float = option(0.5, gt=0, lt=1, help="DBSCAN radius on the joint k-reciprocal Jaccard distance "
                        "(ADCA: 0.6 SYSU-MM01, 0.3 RegDB; 0.5 chosen on synthetic training-set diagnostics)")
    min_samples: int = option(4, ge=2, help="DBSCAN core-point neighbourhood size")
    k1: int = option(16, ge=2, help="k-reciprocal neighbourhood size of the Jaccard distance (the lineage's 30 "
                     "suits ~20 images per identity; 16 chosen for the synthetic presets' 6-8 per modality)")
    k2: int = option(6, ge=1, help="query-expansion neighbourhood of the Jaccard distance")
    eps_fallback: float = option(0.05, ge=0, lt=1, help="when DBSCAN finds no cluster (one cluster) on toy "
                                 "data with an untrained model, eps is raised (lowered) by this step, up to "
                                 "eps_max (down to the step); 0 disables")
    eps_max: float = option(0.9, gt=0, lt=1)

    # -- cross-modality hierarchical clustering (docs/methods.md, CHCR: C) -----------------------------
    hierarchy: str = option("cross-merge", choices=("none", "cross-merge", "modality-centred"),
                            help="none: flat joint clustering; cross-merge (C1): merge visible-only and "
                            "infrared-only clusters by mutual nearest centroids; modality-centred (C2): "
                            "centre each modality's features before the joint clustering")
    merge_threshold: float = option(0.0, ge=-1, le=1, help="cross-merge: least cosine similarity of the "
                                    "modality-centred centroids of a merged pair")
    merge_rounds: int = option(3, ge=1, help="cross-merge: rounds of mutual-nearest matching; each round "
                               "matches among the clusters still unmatched")
    merge_features: str = option("image", choices=MERGE_FEATURES, help="cross-merge: the features whose "
                                 "cluster centroids are matched across modalities. image: the image features "
                                 "(the paper's reading); masks: the shape masks of the same images through the "
                                 "same network (a reidkit extension, not in the paper; needs a mask for every "
                                 "training image: the synthetic data has them, real data via data.mask_root)")
    centre_modalities: bool = option(True, help="cross-merge: compare centroids after subtracting each "
                                     "modality's mean feature (removes the modality offset)")
    mc_weight: float = option(0.5, ge=0, help="weight of the modality contrastive loss (0 disables it)")
    mc_temperature: float = option(0.05, gt=0)

    # -- inter-channel pseudo-label refinement (docs/methods.md, CHCR: D) ------------------------------
    refinement: str = option("strict", choices=("none", "strict", "soft"),
                             help="strict (D1): keep a visible sample when, in each of the R/G/B channel "
                             "clusterings, its cluster's majority main label is its own; soft (D2): keep it "
                             "when the mean Jaccard overlap of its main and channel clusters >= soft_threshold")
    soft_threshold: float = option(0.5, gt=0, le=1)
    channels_with_infrared: bool = option(True, help="cluster each channel view together with the infrared "
                                          "features (as the main clustering does); false: visible only")

    outliers: str = option("drop", choices=("drop", "instances"),
                           help="samples without a cluster (DBSCAN outliers, refined away): drop them for the "
                           "epoch (the ClusterContrast/ADCA lineage), or keep each as its own memory entry "
                           "(SpCL-style un-clustered instances), which gives a randomly initialised model an "
                           "instance-discrimination signal while the clusters are still poor")

    # -- memory and augmentation ------------------------------------------------------------------------
    temperature: float = option(0.05, gt=0, help="cluster-memory InfoNCE temperature")
    momentum: float = option(0.2, ge=0, lt=1, help="memory momentum: the weight on the old value")
    visible_views: tuple[str, ...] = option(("exchange",), help="training views of a visible image: "
                                            "plain (colour) and/or exchange (ChannelExchange, gray=2)")
    infrared_gray: float = option(0.5, ge=0, le=1, help="ChannelAdapGray probability on infrared images")
    channel_erasing: float = option(0.5, ge=0, le=1, help="ChannelRandomErasing probability (it replaces "
                             "the standard RandomErasing, as in CAJ/ADCA)")

    def __post_init__(self) -> None:
        bad = [v for v in self.visible_views if v not in VISIBLE_VIEWS]
        if bad or not self.visible_views:
            raise ConfigError(f"method_args.visible_views: {list(self.visible_views)} must be a non-empty list "
                             f"of {', '.join(VISIBLE_VIEWS)}")
        if self.eps_max < self.eps:
            raise ConfigError(f"method_args.eps_max ({self.eps_max}) must be >= eps ({self.eps})")


#: The synthetic ``small`` preset on a 2-core CPU: ``reidkit run --method chcr`` is meant to finish within 8
#: minutes (measured by benchmarks/budgets.py, benchmarks/README.md). The preset's own 128 x 64 images, 15 clustering epochs (main
#: + three channel views) and 750 steps: the budget benchmarks/synthetic.yaml gives every method. Only what differs
#: from the core defaults (reidkit/config.py: the synthetic ``small`` preset, 32 images per modality per step,
#: 50 steps per epoch, Adam at 3.5e-4, a step decay by 0.1) is here; configs/chcr/_gpu.yaml sets the real-data values.
RUN_DEFAULTS: Mapping[str, Any] = {
    "data": {"workers": 0},
    "model": {"weights": "synthetic-pretrained"},
    "optim": {"epochs": 15, "step_size": 12},
}
