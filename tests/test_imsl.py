"""IMSL: MMC, proxies, MIL losses, SMR pieces, MMRE weights, the contract on 2 and 3 modalities."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidkit.cluster import mean_update
from reidkit_methods.imsl import IMSL, IMSLConfig
from reidkit_methods.imsl.config import cluster_count
from reidkit_methods.imsl.mil import (
    offline_association_loss,
    online_association_loss,
    online_positives,
    online_ranking,
)
from reidkit_methods.imsl.mmc import mmc, modality_mean_centroids
from reidkit_methods.imsl.mmre import normalise_per_modality, reliability_weights
from reidkit_methods.imsl.proxies import build_proxies, group_means
from reidkit_methods.imsl.smr import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    alignment_loss,
    frozen_bn_stats,
    otsu_threshold,
    silhouette,
)


# ------------------------------------------------------------------------------------------------------
# MMC
# ------------------------------------------------------------------------------------------------------
def test_mmc_centroid_is_the_mean_of_the_modality_means_on_a_hand_case():
    # cluster 0: three visible samples at x=0 and one infrared at x=4 -> modality means 0 and 4 -> centroid 2
    # (the plain member mean would be 1: the dominant modality pulls it)
    feats = torch.tensor([[0.0, 0], [0, 0], [0, 0], [4, 0], [10, 2], [10, 6]])
    labels = torch.tensor([0, 0, 0, 0, 1, 1])
    modality = torch.tensor([0, 0, 0, 1, 0, 0])
    centroids, present = modality_mean_centroids(feats, labels, modality, 3, 2)
    assert torch.allclose(centroids[0], torch.tensor([2.0, 0]))
    assert torch.allclose(centroids[1], torch.tensor([10.0, 4]))  # one modality present: its mean
    assert present.tolist() == [True, True, False]
    plain, _ = mean_update(feats, labels, 3)
    assert torch.allclose(plain[0], torch.tensor([1.0, 0]))


def test_mmc_three_modalities_weighs_each_modality_equally():
    feats = torch.tensor([[3.0], [3.0], [3.0], [6.0], [0.0]])
    labels = torch.zeros(5, dtype=torch.int64)
    modality = torch.tensor([0, 0, 0, 1, 2])
    centroids, _ = modality_mean_centroids(feats, labels, modality, 1, 3)
    assert centroids[0].item() == pytest.approx(3.0)  # (3 + 6 + 0) / 3, not 18 / 5


def test_mmc_clusters_are_mostly_pure_and_centroids_match_the_final_labels():
    centres = F.normalize(torch.randn(6, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    truth = torch.arange(6).repeat_interleave(8)
    modality = torch.arange(2).repeat(24)
    offset = torch.where(modality.unsqueeze(1) == 1, 0.05, -0.05) * torch.ones(1, 16)  # a modality gap
    noise = 0.01 * torch.randn(48, 16, generator=torch.Generator().manual_seed(1))
    feats = F.normalize(centres[truth] + offset + noise, dim=1)
    for seed in range(5):
        # the official initialisation (one random sample per modality, averaged) often starts between two
        # identities, so k-means can merge a pair: over-cluster (as K = 1.2 x ids does) and ask for purity
        labels, centroids = mmc(feats, modality, 24, iterations=10, generator=np.random.default_rng(seed))
        assert labels.min() == 0 and labels.max() == centroids.shape[0] - 1
        purity = sum(int(torch.bincount(truth[labels == k]).max()) for k in range(centroids.shape[0])) / 48
        assert purity >= 0.8
        expected, _ = modality_mean_centroids(feats, labels, modality, centroids.shape[0], 2)
        assert torch.allclose(centroids, expected, atol=1e-6)


def test_mmc_drops_empty_clusters_and_is_deterministic_per_generator():
    feats = F.normalize(torch.randn(20, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    modality = torch.arange(2).repeat(10)
    a, ca = mmc(feats, modality, 20, generator=np.random.default_rng(3))
    b, cb = mmc(feats, modality, 20, generator=np.random.default_rng(3))
    assert torch.equal(a, b) and torch.equal(ca, cb)
    assert sorted(set(a.tolist())) == list(range(ca.shape[0]))  # consecutive, no empty cluster left


def test_mmc_kmeans_plus_plus_start_is_deterministic_and_no_worse_on_separated_identities():
    centres = F.normalize(torch.randn(8, 16, generator=torch.Generator().manual_seed(2)), dim=1)
    truth = torch.arange(8).repeat_interleave(6)
    modality = torch.arange(2).repeat(24)
    feats = F.normalize(centres[truth] + 0.02 * torch.randn(48, 16, generator=torch.Generator().manual_seed(3)),
                        dim=1)
    a, ca = mmc(feats, modality, 8, iterations=10, generator=np.random.default_rng(0), init="k-means++")
    b, cb = mmc(feats, modality, 8, iterations=10, generator=np.random.default_rng(0), init="k-means++")
    assert torch.equal(a, b) and torch.equal(ca, cb)
    expected, _ = modality_mean_centroids(feats, a, modality, ca.shape[0], 2)
    assert torch.allclose(ca, expected, atol=1e-6)  # the update is still MMC's

    def inertia(labels, cents):
        return float(((feats - cents[labels]) ** 2).sum())

    # well-separated identities, K = their number: D^2 seeding finds them from every start; the official
    # start (one random sample per modality, averaged) leaves some merged, so its objective is higher
    pp = [inertia(*mmc(feats, modality, 8, iterations=10, generator=np.random.default_rng(s), init="k-means++"))
          for s in range(5)]
    official = [inertia(*mmc(feats, modality, 8, iterations=10, generator=np.random.default_rng(s)))
                for s in range(5)]
    assert max(pp) < min(official)
    with pytest.raises(ValueError, match="initialisation"):
        mmc(feats, modality, 8, generator=np.random.default_rng(0), init="random")


def test_cluster_count_rule():
    cfg = IMSLConfig()
    assert cluster_count(cfg, num_train=4000, num_train_ids=171, num_modalities=3) == 205
    assert cluster_count(IMSLConfig(clusters=200), num_train=4000, num_train_ids=171, num_modalities=3) == 200
    assert cluster_count(cfg, num_train=800, num_train_ids=None, num_modalities=2) == 100  # 800 / (2 x 4)


# ------------------------------------------------------------------------------------------------------
# proxies
# ------------------------------------------------------------------------------------------------------
def test_proxies_cover_every_cluster_modality_pair_exactly_once():
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
    modality = torch.tensor([0, 1, 0, 2, 2, 1, 1, 0])
    idx = build_proxies(labels, modality, 3)
    pairs = set(zip(labels.tolist(), modality.tolist()))
    assert idx.num_proxies == len(pairs) == 5
    got = set(zip(idx.proxy_cluster.tolist(), idx.proxy_modality.tolist()))
    assert got == pairs
    for i in range(len(labels)):  # each sample's proxy is its own pair
        p = idx.proxy_of_sample[i]
        assert (idx.proxy_cluster[p].item(), idx.proxy_modality[p].item()) == (labels[i].item(), modality[i].item())
    assert idx.proxies_of_cluster(1).tolist() == [2, 3]
    assert idx.proxies_of_modality(1).tolist() == [1, 4]


def test_group_means_are_normalised_member_means():
    feats = torch.tensor([[1.0, 0], [0, 1], [3, 4]])
    out = group_means(feats, torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(out[0], F.normalize(torch.tensor([0.5, 0.5]), dim=0))
    assert torch.allclose(out[1], torch.tensor([0.6, 0.8]))


# ------------------------------------------------------------------------------------------------------
# MIL
# ------------------------------------------------------------------------------------------------------
def _proxy_setup(seed=0, clusters=5, modalities=3, batch=7, dim=8):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(clusters).repeat_interleave(modalities)
    modality = torch.arange(modalities).repeat(clusters)
    idx = build_proxies(labels, modality, modalities)
    memory = F.normalize(torch.randn(idx.num_proxies, dim, generator=g), dim=1)
    feats = F.normalize(torch.randn(batch, dim, generator=g), dim=1)
    own = torch.randint(0, idx.num_proxies, (batch,), generator=g)
    return idx, memory, feats, own


def test_online_positives_are_the_nearest_proxy_of_each_modality():
    idx, memory, feats, own = _proxy_setup()
    ranking = online_ranking(feats @ memory.T, memory, own)
    pos = online_positives(ranking, idx.proxy_modality, 3, k=3)
    for i in range(len(own)):
        expected = set()
        for m in range(3):
            cand = idx.proxies_of_modality(m)
            expected.add(int(cand[ranking[i, cand].argmax()]))
        assert set(torch.nonzero(pos[i]).squeeze(1).tolist()) == expected
        assert pos[i, own[i]]  # the own proxy is its modality's nearest (similarity 1)
    # posK = 2 keeps the two best-ranked candidates
    pos2 = online_positives(ranking, idx.proxy_modality, 3, k=2)
    assert (pos2.sum(1) == 2).all() and (pos2 <= pos).all()


def test_online_positives_with_a_missing_modality():
    ranking = torch.tensor([[0.9, 0.1, 0.5]])
    pos = online_positives(ranking, torch.tensor([0, 0, 2]), 3, k=3)
    assert pos.tolist() == [[True, False, True]]


def _brute_force_loss(logits_row, pos_ids, neg_ids):
    sel = list(pos_ids) + list(neg_ids)
    denom = torch.logsumexp(logits_row[sel], dim=0)
    return -sum(logits_row[a] - denom for a in pos_ids) / len(pos_ids)


def test_offline_loss_matches_a_brute_force_reference():
    idx, memory, feats, own = _proxy_setup(seed=1)
    clusters = idx.proxy_cluster[own]
    sims = feats @ memory.T
    loss = offline_association_loss(sims, clusters, idx.proxy_cluster, temperature=0.1, hard_negatives=4)
    for i in range(len(own)):
        pos_ids = idx.proxies_of_cluster(int(clusters[i])).tolist()
        others = [j for j in range(idx.num_proxies) if j not in pos_ids]
        neg_ids = sorted(others, key=lambda j: -sims[i, j].item())[:4]
        assert loss[i].item() == pytest.approx(_brute_force_loss(sims[i] / 0.1, pos_ids, neg_ids).item(), rel=1e-5)


def test_online_loss_matches_a_brute_force_reference():
    idx, memory, feats, own = _proxy_setup(seed=2)
    sims = feats @ memory.T
    ranking = online_ranking(sims, memory, own)
    loss = online_association_loss(sims, ranking, idx.proxy_modality, num_modalities=3, temperature=0.1,
                                   hard_negatives=5, positives=3)
    for i in range(len(own)):
        pos_ids = [int(c[ranking[i, c].argmax()]) for c in (idx.proxies_of_modality(m) for m in range(3))]
        others = [j for j in range(idx.num_proxies) if j not in pos_ids]
        neg_ids = sorted(others, key=lambda j: -ranking[i, j].item())[:5]
        assert loss[i].item() == pytest.approx(_brute_force_loss(sims[i] / 0.1, pos_ids, neg_ids).item(), rel=1e-5)


def test_smr_mask_memory_loss_is_the_official_label_smoothed_cross_entropy():
    from reidkit.models.memory import ClusterMemory

    cfg = IMSLConfig()
    memory = ClusterMemory(2, temperature=cfg.smr_temperature, momentum=cfg.smr_momentum)
    memory.reset(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    g = F.normalize(torch.tensor([[0.8, 0.3]]), dim=1)
    got = memory(g, torch.tensor([0]), label_smoothing=cfg.smr_label_smoothing)
    logp = torch.log_softmax(g @ memory.features.T / 0.05, dim=1)[0]
    target = torch.tensor([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    assert got.item() == pytest.approx(-(target * logp).sum().item(), rel=1e-5)


def test_alignment_loss_sends_no_gradient_to_the_mask_branch():
    h = F.normalize(torch.randn(4, 6), dim=1).requires_grad_(True)
    g = F.normalize(torch.randn(4, 6), dim=1).requires_grad_(True)
    alignment_loss(h, g).backward()
    assert h.grad is not None and g.grad is None
    assert alignment_loss(g.detach(), g.detach()).item() == pytest.approx(-1.0)


def test_frozen_bn_stats_keeps_running_statistics():
    bn = torch.nn.BatchNorm1d(3)
    with frozen_bn_stats(bn):
        bn(torch.randn(8, 3) + 5)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and bn.momentum == 0.1
    bn(torch.randn(8, 3) + 5)
    assert bn.running_mean.abs().sum() > 0


def _normalise(img):
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (img - m) / s


def test_silhouette_finds_a_person_shaped_region_on_a_noisy_background():
    g = torch.Generator().manual_seed(0)
    img = 0.3 + 0.05 * torch.rand(2, 3, 32, 16, generator=g)
    img[0, :, 6:28, 4:12] = torch.tensor([0.9, 0.2, 0.1]).view(3, 1, 1)  # red figure
    img[1, :, 4:30, 5:11] = 0.05  # dark figure (infrared-like)
    out = silhouette(_normalise(img))
    white = _normalise(torch.ones(1, 3, 1, 1)).view(3)
    fg = torch.isclose(out[:, 0], white[0])
    truth = torch.zeros(2, 32, 16, dtype=torch.bool)
    truth[0, 6:28, 4:12] = True
    truth[1, 4:30, 5:11] = True
    iou = (fg & truth).flatten(1).sum(1).float() / (fg | truth).flatten(1).sum(1).float()
    assert (iou > 0.8).all(), iou
    assert torch.equal(silhouette(_normalise(img)), out)  # deterministic


def test_otsu_threshold_splits_two_modes():
    values = torch.cat([torch.full((50,), 1.0), torch.full((50,), 5.0)]).view(1, 100)
    t = otsu_threshold(values)
    assert 1.0 < t.item() < 5.0


# ------------------------------------------------------------------------------------------------------
# MMRE
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["centroid-distance", "margin", "mask-agreement"])
def test_reliability_weights_average_one_per_modality(kind):
    g = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(60, 8, generator=g), dim=1)
    modality = torch.arange(3).repeat(20)
    feats[modality == 2] *= 1.5  # a modality far from every centroid
    labels, centroids = mmc(feats, modality, 6, generator=np.random.default_rng(0))
    masks = F.normalize(torch.randn(60, 8, generator=g), dim=1)
    w = reliability_weights(kind, feats=feats, labels=labels, centroids=centroids, modality_ids=modality,
                            num_modalities=3, mask_feats=masks, mask_centroids=group_means(masks, labels, 6))
    assert (w > 0).all() and torch.isfinite(w).all()
    for m in range(3):
        assert w[modality == m].mean().item() == pytest.approx(1.0, abs=1e-5)


def test_centroid_distance_reliability_prefers_samples_near_their_centroid():
    feats = torch.tensor([[0.0, 0], [0.1, 0], [1.0, 0], [0, 0], [0, 0.5]])
    labels = torch.zeros(5, dtype=torch.int64)
    modality = torch.tensor([0, 0, 0, 1, 1])
    w = reliability_weights("centroid-distance", feats=feats, labels=labels, centroids=torch.zeros(1, 2),
                            modality_ids=modality, num_modalities=2)
    assert w[0] > w[1] > w[2] and w[3] > w[4]
    assert normalise_per_modality(torch.tensor([2.0, 4.0, 1.0]), torch.tensor([0, 0, 1]), 2).tolist() == \
        pytest.approx([2 / 3, 4 / 3, 1.0])


def test_mask_agreement_needs_the_shape_branch():
    with pytest.raises(ValueError, match="smr"):
        reliability_weights("mask-agreement", feats=torch.zeros(2, 2), labels=torch.zeros(2, dtype=torch.int64),
                            centroids=torch.zeros(1, 2), modality_ids=torch.zeros(2, dtype=torch.int64),
                            num_modalities=1)


def test_config_defaults_are_the_official_values():
    cfg = IMSLConfig()
    assert (cfg.mil_temperature, cfg.mil_momentum, cfg.hard_negatives) == (0.10, 0.2, 40)
    assert (cfg.smr_temperature, cfg.smr_label_smoothing, cfg.smr_align_weight) == (0.05, 0.1, 0.25)
    assert cfg.clustering == "mmc" and cfg.kmeans_iterations == 5 and math.isclose(cfg.clusters_per_id, 1.2)
    assert cfg.channel_exchange and cfg.mixed_bn and cfg.mask_bn_stats and not cfg.mmre
    assert cfg.augment_order == "official"


def test_synthetic_config_states_the_code_defaults(shipped_config):
    from reidkit.config import to_dict
    from reidkit.engine.run import resolve_run_config

    assert to_dict(shipped_config("imsl", "synthetic")) == to_dict(resolve_run_config("imsl"))


def test_synthetic_3m_config_is_the_default_recipe_on_three_modalities(shipped_config):
    from reidkit.config import to_dict
    from reidkit.engine.run import resolve_run_config

    shipped = to_dict(shipped_config("imsl", "synthetic-3m"))
    default = to_dict(resolve_run_config("imsl", overrides=["dataset_args.preset=standard-3m"]))
    assert shipped == default and shipped["dataset_args"]["preset"] == "standard-3m"


@pytest.mark.parametrize("name", ["sysu_mm01", "regdb", "rgbnt201"])
def test_gpu_configs_resolve_with_the_published_values(name, shipped_config):
    cfg = shipped_config("imsl", name)
    assert cfg.data.dataset == name and cfg.model.backbone == "resnet50"
    assert (cfg.data.height, cfg.data.width, cfg.data.batch_size) == (288, 144, 64)
    assert cfg.optim.optimizer == "adam" and math.isclose(cfg.optim.lr, 3.5e-4)
    args = cfg.method_args
    assert args.mil and args.smr and args.clustering == "mmc"
    assert (args.mil_temperature, args.hard_negatives, args.smr_align_weight) == (0.10, 40, 0.25)


# ------------------------------------------------------------------------------------------------------
# training pipelines: the official train.py's (github.com/zqpang/IMSL) erase first, exchange after
# ------------------------------------------------------------------------------------------------------
def _imsl_pipelines(tmp_path, overrides=(), modalities=("visible", "infrared")):
    """{modality: the single training pipeline of IMSL built on a tiny dataset (None: the engine's default)}."""
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.engine.run import build_method_from
    from reidkit.testing import make_tiny_dataset, tiny_config

    root = make_tiny_dataset(tmp_path / "data", modalities=modalities)
    cfg = tiny_config(IMSL, root, [*overrides, "method_args.smr=false"])
    method = build_method_from(IMSL, cfg, GenericDataset.from_config(cfg.data), torch.device("cpu"))
    views = {m: method.train_transforms(m) for m in modalities}
    assert all(v is None or len(v) == 1 for v in views.values())
    return {m: None if v is None else v[0] for m, v in views.items()}


def _force_erasing(pipeline) -> int:
    """Set the pipeline's random erasing to p = 1; return its position."""
    from torchvision import transforms as T

    from reidkit.data.transforms import ChannelRandomErasing

    at = [i for i, t in enumerate(pipeline.transforms) if isinstance(t, (T.RandomErasing, ChannelRandomErasing))]
    assert len(at) == 1
    pipeline.transforms[at[0]].p = 1.0
    return at[0]


def _colour_photo(seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(48, 24, 3), dtype=np.uint8), "RGB")


def _erased_area(out, fill):
    """[H, W] bool: pixels where every channel holds one of the values in ``fill``."""
    return torch.all((out.unsqueeze(-1) == torch.tensor(fill)).any(-1), dim=0)


def test_default_visible_pipeline_erases_then_exchanges_so_every_output_is_grey(tmp_path):
    from reidkit.data.transforms import IMAGENET_MEAN, ChannelExchange, ChannelRandomErasing

    visible = _imsl_pipelines(tmp_path)["visible"]
    erase_at = _force_erasing(visible)
    assert isinstance(visible.transforms[erase_at], ChannelRandomErasing)  # uniform aspect, 100 tries
    assert visible.transforms[erase_at].fill == IMAGENET_MEAN
    assert isinstance(visible.transforms[-1], ChannelExchange) and erase_at < len(visible.transforms) - 1
    torch.manual_seed(0)
    height, width = (32, 16)  # the tiny config's image size
    for seed in range(200):
        out = visible(_colour_photo(seed % 20))
        assert out.shape == (3, height, width)
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])  # three equal channels, always
        area = _erased_area(out, IMAGENET_MEAN)
        assert area.sum() >= 0.02 * height * width - 1  # erased ...
        assert len(set(out[0][area].tolist())) == 1  # ... with one fill value on every channel: grey


def test_default_infrared_pipeline_has_the_official_erasing_and_no_channel_operation(tmp_path):
    from reidkit.data.transforms import IMAGENET_MEAN, ChannelExchange, ChannelRandomErasing

    for modality, pipeline in _imsl_pipelines(tmp_path, modalities=("visible", "nir", "tir")).items():
        assert isinstance(pipeline.transforms[_force_erasing(pipeline)], ChannelRandomErasing)
        has_exchange = any(isinstance(t, ChannelExchange) for t in pipeline.transforms)
        assert has_exchange == (modality == "visible")
        if modality != "visible":
            torch.manual_seed(0)
            out = pipeline(_colour_photo(0))
            assert not torch.equal(out[0], out[1])  # colour kept (the file's own channels)
            filled = torch.all(out == torch.tensor(IMAGENET_MEAN).view(3, 1, 1), dim=0)
            assert filled.sum() >= 0.02 * 32 * 16 - 1


def test_exchange_first_keeps_the_earlier_pipeline_with_coloured_erased_areas(tmp_path):
    from torchvision import transforms as T

    from reidkit.data.transforms import IMAGENET_MEAN, ChannelExchange

    pipelines = _imsl_pipelines(tmp_path, ["method_args.augment_order=exchange-first"])
    assert pipelines["infrared"] is None  # the engine's standard pipeline
    visible = pipelines["visible"]
    erase_at = _force_erasing(visible)
    assert isinstance(visible.transforms[erase_at], T.RandomErasing)  # torchvision's draw
    assert isinstance(visible.transforms[erase_at - 1], ChannelExchange)
    torch.manual_seed(0)
    coloured = 0
    for seed in range(50):
        out = visible(_colour_photo(seed % 20))
        filled = torch.all(out == torch.tensor(IMAGENET_MEAN).view(3, 1, 1), dim=0)
        coloured += int(filled.sum() > 0)  # per-channel fill: the erased area differs across channels
        assert not torch.equal(out[0], out[1])
    assert coloured >= 48  # torchvision gives up (no erasing) after 10 failed draws, rarely


def test_visible_pipeline_without_channel_exchange_keeps_the_official_erasing(tmp_path):
    from reidkit.data.transforms import ChannelExchange, ChannelRandomErasing

    official = _imsl_pipelines(tmp_path / "a", ["method_args.channel_exchange=false"])
    assert not any(isinstance(t, ChannelExchange) for t in official["visible"].transforms)
    assert any(isinstance(t, ChannelRandomErasing) for t in official["visible"].transforms)
    earlier = _imsl_pipelines(tmp_path / "b", ["method_args.channel_exchange=false",
                                               "method_args.augment_order=exchange-first"])
    assert earlier == {"visible": None, "infrared": None}


# ------------------------------------------------------------------------------------------------------
# the contract, end to end on 2 and 3 modalities
# ------------------------------------------------------------------------------------------------------
def test_imsl_meets_the_method_contract_on_two_modalities(tmp_path):
    from reidkit.testing import check_method

    results = check_method(IMSL, tmp_path)
    assert set(results) == {"visible-to-infrared", "infrared-to-visible"}


def test_imsl_meets_the_method_contract_on_three_modalities(tmp_path):
    from reidkit.testing import check_method

    results = check_method(IMSL, tmp_path, modalities=("visible", "nir", "tir"))
    pairs = {f"{q}-to-{g}" for q in ("visible", "nir", "tir") for g in ("visible", "nir", "tir") if q != g}
    assert pairs <= set(results)


def _tiny_trainer(root, overrides=()):
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.engine.run import build_method_from
    from reidkit.engine.trainer import Trainer
    from reidkit.testing import tiny_config

    cfg = tiny_config(IMSL, root, overrides)
    dataset = GenericDataset.from_config(cfg.data)
    method = build_method_from(IMSL, cfg, dataset, torch.device("cpu"))
    return method, Trainer(method, dataset, cfg, device=torch.device("cpu"))


def test_smr_falls_back_to_the_silhouette_when_the_dataset_has_no_masks(tmp_path, caplog):
    import shutil

    from reidkit.data.loaders import build_train_loader
    from reidkit.data.transforms import train_transform
    from reidkit.testing import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data")
    shutil.rmtree(root / "masks")
    with caplog.at_level("WARNING"):  # decided when the method is built
        method, trainer = _tiny_trainer(root)
        ds = trainer.dataset
        plan = method.prepare_epoch(trainer.epoch_context(0))
    assert "silhouette" in caplog.text
    assert method.shape_from_image and not method.needs_masks  # the engine then loads no mask
    assert plan.info["shape_from_image"] == 1.0
    views = {m: list(method.train_transforms(m) or [train_transform((32, 16))]) for m in ds.modalities}
    loader = build_train_loader(ds.train, plan, modalities=ds.modalities, views=views, mask_transform=None,
                                batch_size=8, instances=2, iterations=1, workers=0, seed=0)
    losses = method.training_step(next(iter(loader)))
    assert {"smr_ce", "smr_align"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())


def test_shape_source_masks_without_masks_is_a_clear_error(tmp_path):
    import shutil

    from reidkit.method import MissingMasksError
    from reidkit.testing import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data")
    shutil.rmtree(root / "masks" / "train" / "infrared")
    method, trainer = _tiny_trainer(root, ["method_args.shape_source=masks"])
    assert method.needs_masks and not method.shape_from_image
    with pytest.raises(MissingMasksError, match="data.mask_root"):
        trainer.fit()


def test_cluster_shape_weight_clusters_image_and_mask_features_together(tmp_path, monkeypatch):
    import reidkit_methods.imsl.method as imsl_method
    from reidkit.testing import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data")
    seen = {}

    def spy(feats, *args, **kwargs):
        seen["feats"] = feats
        return mmc(feats, *args, **kwargs)

    monkeypatch.setattr(imsl_method, "mmc", spy)
    # SMR off: the shape still feeds the clustering, so the masks are still loaded
    method, trainer = _tiny_trainer(root, ["method_args.cluster_shape_weight=2.0", "method_args.smr=false"])
    assert method.needs_masks and method.mask_memory is None
    ds = trainer.dataset
    ctx = trainer.epoch_context(0)
    plan = method.prepare_epoch(ctx)
    image, mask = ctx.features().float(), ctx.extract(source="mask").float()
    expected = F.normalize(torch.cat([image, 2.0 * mask], dim=1), dim=1)
    assert seen["feats"].shape == (len(ds.train), 2 * image.shape[1])
    torch.testing.assert_close(seen["feats"], expected)
    assert len(plan.labels) == len(ds.train)

    method0, trainer0 = _tiny_trainer(root, ["method_args.smr=false"])  # official: image features only
    assert not method0.needs_masks
    method0.prepare_epoch(trainer0.epoch_context(0))
    assert seen["feats"].shape[1] == image.shape[1]


# -- modality_link: shape (an extension: per-modality k-means, clusters linked by shape centroids) ------------
def _two_cue_data(people_per_modality, *, per=5, dim=32, seed=0):
    """Image features: one tight blob per (person, modality) at an unrelated place in every modality (no
    cross-modality cue); shape features: one direction per person plus a modality offset (the shape cue)."""
    rng = np.random.default_rng(seed)
    people = sorted({p for ps in people_per_modality for p in ps})
    shape_dir = {p: v for p, v in zip(people, np.linalg.qr(rng.standard_normal((dim, len(people))))[0].T)}
    feats, shapes, modality, truth = [], [], [], []
    for m, ps in enumerate(people_per_modality):
        centres = np.linalg.qr(rng.standard_normal((dim, len(ps))))[0].T  # orthogonal: k-means finds them
        offset = 2.0 * rng.standard_normal(dim)
        for p, c in zip(ps, centres):
            feats.append(c + 0.02 * rng.standard_normal((per, dim)))
            shapes.append(shape_dir[p] + offset + 0.02 * rng.standard_normal((per, dim)))
            modality += [m] * per
            truth += [p] * per
    def unit_rows(parts):
        return F.normalize(torch.tensor(np.concatenate(parts), dtype=torch.float32), dim=1)

    return unit_rows(feats), unit_rows(shapes), torch.tensor(modality), np.array(truth)


def _same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return bool(((a[:, None] == a[None]) == (b[:, None] == b[None])).all())


@pytest.mark.parametrize("modalities", [2, 3])
def test_shape_link_puts_each_person_in_one_cluster_across_modalities(modalities):
    from reidkit_methods.imsl.link import linked_clusters

    people = [list(range(6))] * modalities
    feats, shapes, modality, truth = _two_cue_data(people)
    out = linked_clusters(feats, shapes, modality, 6, iterations=10, rounds=3, generator=np.random.default_rng(0))
    labels, links = out.labels, out.links
    assert _same_partition(labels.numpy(), truth)
    assert len(links) == 6 * (modalities - 1) and {lk.modality for lk in links} == set(range(1, modalities))
    # MMC on the same image features has nothing that links the modalities correctly
    mmc_labels, _ = mmc(feats, modality, 6, iterations=10, generator=np.random.default_rng(0))
    assert not _same_partition(mmc_labels.numpy(), truth)


def test_shape_link_is_one_to_one_and_leaves_clusters_without_a_partner_alone():
    from reidkit.cluster import relabel
    from reidkit_methods.imsl.link import linked_clusters

    # persons 2 and 3 are seen in both modalities, 0-1 only in the first, 4-5 only in the second
    feats, shapes, modality, truth = _two_cue_data([[0, 1, 2, 3], [2, 3, 4, 5]])
    out = linked_clusters(feats, shapes, modality, 4, iterations=10, rounds=3, threshold=0.5,
                          generator=np.random.default_rng(1))
    labels, links = out.labels.numpy(), out.links
    assert _same_partition(labels, truth)  # 2 and 3 linked, the rest single-modality clusters
    assert len(links) == 2 and len({lk.anchor for lk in links}) == 2 and len({lk.other for lk in links}) == 2
    for m in (0, 1):  # within a modality the partition is the per-modality k-means one, untouched
        rows = modality.numpy() == m
        assert _same_partition(labels[rows], relabel(truth[rows]))
        assert _same_partition(out.within[rows], relabel(truth[rows]))
        assert set(out.cluster_modality[out.within[rows]]) == {m}
    # without the threshold the mutual-nearest rounds pair the strangers too, still one-to-one
    loose = linked_clusters(feats, shapes, modality, 4, iterations=10, rounds=3, threshold=-1.0,
                            generator=np.random.default_rng(1))
    assert len(loose.links) == 4 and len(np.unique(loose.labels.numpy())) == 4


def test_modality_link_shape_clusters_on_image_features_and_links_on_mask_features(tmp_path, monkeypatch):
    import reidkit_methods.imsl.method as imsl_method
    from reidkit.testing import make_tiny_dataset
    from reidkit_methods.imsl.link import linked_clusters

    root = make_tiny_dataset(tmp_path / "data")
    seen = {}

    def spy(feats, shape_feats, *args, **kwargs):
        seen.update(feats=feats, shape=shape_feats)
        out = linked_clusters(feats, shape_feats, *args, **kwargs)
        seen["labels"] = out.labels
        return out

    monkeypatch.setattr(imsl_method, "linked_clusters", spy)
    monkeypatch.setattr(imsl_method, "mmc", lambda *a, **k: pytest.fail("MMC ran with modality_link=shape"))
    # SMR off: the shape still links the clusters, so the masks are still loaded
    method, trainer = _tiny_trainer(root, ["method_args.modality_link=shape", "method_args.smr=false",
                                           "method_args.mmre=true"])
    assert method.needs_masks and method.mask_memory is None
    ds = trainer.dataset
    ctx = trainer.epoch_context(0)
    plan = method.prepare_epoch(ctx)
    torch.testing.assert_close(seen["feats"], ctx.features().float())
    torch.testing.assert_close(seen["shape"], ctx.extract(source="mask").float())
    assert not torch.allclose(seen["shape"], seen["feats"])
    np.testing.assert_array_equal(plan.labels, seen["labels"].numpy())
    assert plan.info["links"] >= 0 and len(method.sample_weight) == len(ds.train)
    assert method.sample_proxy.max() + 1 == method.proxy_modality.numel()  # a proxy per (cluster, modality)


def test_modality_link_shape_does_not_combine_with_cluster_shape_weight():
    from reidkit.config import ConfigError

    with pytest.raises(ConfigError, match="cluster_shape_weight"):
        IMSLConfig(modality_link="shape", cluster_shape_weight=2.0)


@pytest.mark.parametrize("modalities", [("visible", "infrared"), ("visible", "nir", "tir")])
def test_imsl_with_the_shape_link_meets_the_method_contract(tmp_path, modalities):
    from reidkit.testing import check_method

    results = check_method(IMSL, tmp_path, modalities=modalities, overrides=["method_args.modality_link=shape"])
    assert f"{modalities[1]}-to-visible" in results


def test_diagnostic_link_precision_counts_links_between_clusters_of_one_majority_identity(benchmark_script):
    from reidkit_methods.imsl.link import Link, LinkResult

    diagnostics = benchmark_script("imsl_diagnostics")
    # step-1 clusters 0, 1 (modality 0: persons 7, 8) and 2, 3 (modality 1: persons 8, 7, one stray sample in 2)
    within = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3])
    truth = np.array([7, 7, 8, 8, 8, 8, 7, 7, 7])
    result = LinkResult(torch.zeros(9, dtype=torch.int64), within, np.array([0, 0, 1, 1]),
                        [Link(1, 0, 3, 0.9), Link(1, 1, 3, 0.5)])  # the first right, the second wrong
    scores = diagnostics.link_precision(result, truth)
    assert scores["link_precision"] == 0.5
    assert scores["link_precision_chance"] == 0.5  # each anchor's person is one of modality 1's two clusters
    none = diagnostics.link_precision(LinkResult(result.labels, within, result.cluster_modality, []), truth)
    assert np.isnan(none["link_precision"])
