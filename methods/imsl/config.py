"""IMSL's method arguments (``method_args``) and the rules that turn them into numbers.

Every module of the paper is a switch (docs/methods.md, IMSL): ``clustering`` (MMC or plain k-means), ``mil``,
``smr`` and ``mmre``. The official code's behaviours are options whose default is the official value:

* ``channel_exchange`` (true): every *visible* training image has one of R/G/B copied into all three
  channels (ChannelExchange, gray=2), so colour is never seen in training.
* ``augment_order`` (official): the training pipelines of the official ``train.py``
  (github.com/zqpang/IMSL, ``get_train_loader``). Visible images (``train_transformer2``): flip, pad-crop,
  normalise, random erasing, *then* the channel exchange, so every visible image has three equal channels
  and erased areas are grey. Every modality's random erasing is the official one (``RandomErasing`` of
  ``imsl/utils/data/transforms.py``: area 0.02-0.4, aspect ratio uniform in [0.3, 3.33], up to 100 draws,
  fill = the ImageNet mean values); infrared images (``train_transformer``) get no channel operation.
  ``exchange-first`` is reidkit's earlier pipeline, which every IMSL number measured before this option
  existed used: the exchange before torchvision's RandomErasing (aspect log-uniform, 10 draws), so erased
  areas keep their per-channel fill and stay coloured.
* ``mixed_bn`` (true): the images of every modality go through the trunk as one concatenated batch, so
  BatchNorm statistics mix the modalities (docs/methods.md, IMSL: official-code behaviours); false runs one
  forward per modality.
* the shared stem is the run config's ``model.stems: shared`` (the backbone's default); ``per-modality``
  gives every modality (and its masks) its own conv1/bn1. The official forward calls that shared stem once
  per modality, so IMSL's defaults set ``model.stem_batch: per-modality``; ``joint`` feeds it the
  concatenation, whose BatchNorm statistics then match the running statistics used at evaluation
  (the measurement is in docs/synthetic.md).
* ``mask_bn_stats`` (true): mask batches update the BatchNorm running statistics, as in the official
  code where masks go through the same network in train mode (docs/methods.md, IMSL: SMR).
* ``mmre`` (false): MMRE is not in the released code; the reconstruction (docs/methods.md, IMSL: MMRE) is opt-in.

Two extensions, both off by default. ``modality_link: shape`` (:mod:`.link`) clusters each modality on
its own and links the clusters across modalities by their shape centroids instead of MMC's shared
centroid. ``cluster_shape_weight`` w > 0 lets the shape feed the clustering back
("MMC iterates with SMR", the abstract), where the official code only lets MMC's labels guide SMR. MMC
then clusters ``L2norm([f_i, w * g_i])``, the image feature f_i next to its mask feature g_i (same shape
source as SMR). A mask carries no modality, so its feature is the one cue that can put a visible and an
infrared image of one person in the same cluster before the image features align (benchmarks/imsl.md).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reidkit.config import ConfigError, option

RELIABILITY_KINDS = ("centroid-distance", "margin", "mask-agreement")
SHAPE_SOURCES = ("auto", "masks", "silhouette")
AUGMENT_ORDERS = ("official", "exchange-first")


@dataclass(frozen=True)
class IMSLConfig:
    # -- MMC: modality mean clustering (docs/methods.md, IMSL: MMC) ------------------------------------
    clustering: str = option("mmc", choices=("mmc", "kmeans"),
                             help="mmc: centroid = mean of the per-modality means (official); "
                                  "kmeans: centroid = mean of all members (the MMC-off ablation)")
    clusters: int = option(0, ge=0, help="K; 0 = clusters_per_id x identities (see cluster_count)")
    clusters_per_id: float = option(1.2, gt=0, help="K = round(clusters_per_id x training identities)")
    images_per_cluster: int = option(4, ge=1,
                                     help="when the identity count is unknown: K = N / (modalities x this)")
    kmeans_iterations: int = option(5, ge=1, help="k-means iterations per epoch (official 5)")
    kmeans_init: str = option("official", choices=("official", "k-means++"),
                              help="official: each centroid the mean of one random sample per modality; "
                                   "k-means++: D^2 seeding (a reidkit option; same objective and update)")
    modality_link: str = option("mmc", choices=("mmc", "shape"),
                                help="mmc: one clustering of all modalities, linked by MMC's shared centroids "
                                     "(official); shape: k-means within each modality, clusters linked "
                                     "across modalities by mutual-nearest shape centroids (extension, link.py)")
    link_rounds: int = option(3, ge=1, help="modality_link=shape: rounds of mutual-nearest matching")
    link_threshold: float = option(0.0, ge=-1, le=1,
                                   help="modality_link=shape: least cosine of a linked pair's shape centroids")

    # -- MIL: modality-aware invariant learning (docs/methods.md, IMSL: MIL) ---------------------------
    mil: bool = option(True, help="(cluster, modality) proxy losses; false = plain cluster-memory InfoNCE")
    mil_temperature: float = option(0.10, gt=0, help="proxy logit temperature (official 0.10)")
    mil_momentum: float = option(0.2, ge=0, lt=1, help="proxy memory: weight of the old value (official 0.2)")
    hard_negatives: int = option(40, ge=1, help="hard negative proxies per sample (official 40)")
    online_positives: int = option(0, ge=0, help="posK of the online loss; 0 = the number of modalities")
    online_beta: float = option(0.0, ge=0, le=1,
                                help="online ranking r = (1-beta) <p_own, p> + beta <f, p> (official 0)")
    offline_weight: float = option(1.0, ge=0, help="weight of the offline association loss")
    online_weight: float = option(1.0, ge=0, help="weight of the online association loss")
    cluster_temperature: float = option(0.05, gt=0, help="InfoNCE temperature of the MIL-off cluster memory")
    cluster_momentum: float = option(0.2, ge=0, lt=1, help="MIL-off cluster memory: weight of the old value")

    # -- SMR: shape-based mutual reinforcement (docs/methods.md, IMSL: SMR) ----------------------------
    smr: bool = option(True, help="shape branch: mask-cluster CE + image-to-mask alignment")
    shape_source: str = option("auto", choices=SHAPE_SOURCES,
                               help="auto: the dataset's masks when every training image has one, else "
                                    "the silhouette estimate; masks: require them; silhouette: always estimate")
    smr_temperature: float = option(0.05, gt=0, help="mask-cluster memory temperature (official 0.05)")
    smr_label_smoothing: float = option(0.1, ge=0, lt=1, help="label smoothing of the mask CE (official 0.1)")
    smr_momentum: float = option(0.2, ge=0, lt=1, help="mask-cluster memory: weight of the old value")
    smr_align_weight: float = option(0.25, ge=0, help="weight of the image-to-mask alignment (official 0.25)")
    cluster_shape_weight: float = option(
        0.0, ge=0, help="MMC clusters L2norm([f, w * g]) of the image feature f and shape feature g; "
                        "0 = image features only (official). Extension, see the module docstring")

    # -- MMRE: multi-modality reliability estimation (docs/methods.md, IMSL: MMRE; reconstructed) -------
    mmre: bool = option(False, help="per-sample weights normalised per modality on L_off, L_on, L_ce")
    mmre_reliability: str = option("centroid-distance", choices=RELIABILITY_KINDS,
                                   help="what makes a pseudo-label reliable (see mmre.py)")

    # -- official-code behaviours (module docstring) -------------------------------------------------
    channel_exchange: bool = option(True, help="ChannelExchange(gray=2) on every visible training image")
    augment_order: str = option(AUGMENT_ORDERS[0], choices=AUGMENT_ORDERS,
                                help="official: random erasing, then the channel exchange (erased areas "
                                     "grey, all three channels equal), with the official erasing draw "
                                     "(aspect uniform in [0.3, 3.33], 100 tries) on every modality; "
                                     "exchange-first: the exchange, then torchvision's RandomErasing "
                                     "(aspect log-uniform, 10 tries; erased areas coloured), reidkit's "
                                     "pipeline before this option")
    mixed_bn: bool = option(True, help="one trunk forward over all modalities (mixed-modality BatchNorm)")
    mask_bn_stats: bool = option(True, help="mask batches update BatchNorm running statistics (official)")

    def __post_init__(self) -> None:
        if self.modality_link == "shape" and self.cluster_shape_weight:
            raise ConfigError("method_args.modality_link=shape clusters each modality on image features and "
                              "links by shape; it does not combine with cluster_shape_weight > 0 (set one)")


#: CPU-friendly defaults for the synthetic presets: the budget of benchmarks/synthetic.yaml (128 x 64,
#: 15 epochs x 50 steps) from the shipped pretrained init, with the shared stem called once per modality as in
#: the official code. The learning rate for fine-tuning that init, 1e-4, was chosen on a validation split
#: (benchmarks/tuning-init.yaml; the published 3.5e-4 was set for ImageNet ResNet-50s and takes IMSL below its
#: own init here, benchmarks/imsl.md). Only what differs from the core defaults (reidkit/config.py: 128 x 64
#: images, 32 per modality per step, 50 steps per epoch, Adam, a step decay by 0.1) is here;
#: configs/imsl/_gpu.yaml restores the official values for real data.
RUN_DEFAULTS: Mapping[str, Any] = {
    "data": {"workers": 0},
    "model": {"weights": "synthetic-pretrained", "stem_batch": "per-modality"},
    "optim": {"lr": 1e-4, "epochs": 15, "step_size": 12},
}


def cluster_count(cfg: IMSLConfig, *, num_train: int, num_train_ids: int | None, num_modalities: int) -> int:
    """K for MMC.

    ``cfg.clusters`` when set; else ``round(clusters_per_id x num_train_ids)`` (K = 200 for RGBNT201's 171
    identities is 1.17x); else, with no identity count, ``num_train / (num_modalities x images_per_cluster)``,
    i.e. enough images per cluster and modality to fill one P x K batch slot. Never below 2.
    """
    if cfg.clusters:
        k = cfg.clusters
    elif num_train_ids:
        k = round(cfg.clusters_per_id * num_train_ids)
    else:
        k = num_train // (max(num_modalities, 1) * cfg.images_per_cluster)
    return max(2, min(int(k), num_train))
