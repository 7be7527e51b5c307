"""dc-baseline: the Gaussian consistency losses, the triplets, the model, the sampler and the contract."""
from __future__ import annotations

import dataclasses
import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from reidkit_methods.dc_baseline import DCBaseline, DCBaselineConfig
from reidkit_methods.dc_baseline.gaussian import (
    distribution_consistency,
    gaussian_stats,
    symmetric_kl,
    wasserstein2,
)
from reidkit_methods.dc_baseline.triplet import (
    hard_triplet,
    pair_masks,
    pairwise_euclidean,
    triplet_loss,
    weighted_regularized_triplet,
)

ROOT = Path(__file__).resolve().parents[1]
TWO = ("visible", "infrared")
THREE = ("visible", "nir", "tir")


# ------------------------------------------------------------------------------------------------------
# Gaussian divergences
# ------------------------------------------------------------------------------------------------------
def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_symmetric_kl_by_hand():
    # N(0, 1) vs N(1, 4): KL(a||b) = ln 2 + 2/8 - 1/2, KL(b||a) = -ln 2 + 5/2 - 1/2; sum = 1.75
    value = symmetric_kl(_t(0.0), _t(1.0), _t(1.0), _t(4.0))
    assert value.item() == pytest.approx(1.75)
    assert symmetric_kl(_t(0.0), _t(1.0), _t(1.0), _t(4.0), reduction="mean").item() == pytest.approx(1.75)


def test_symmetric_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_a, mu_b, var_a, var_b = torch.rand(4, 5, 7, generator=g, dtype=torch.float64).unbind(0)
    mu_a, mu_b, var_a, var_b = 3 * mu_a - 1, 3 * mu_b - 2, var_a + 0.1, var_b + 0.1
    a = torch.distributions.Independent(torch.distributions.Normal(mu_a, var_a.sqrt()), 1)
    b = torch.distributions.Independent(torch.distributions.Normal(mu_b, var_b.sqrt()), 1)
    expected = torch.distributions.kl_divergence(a, b) + torch.distributions.kl_divergence(b, a)
    torch.testing.assert_close(symmetric_kl(mu_a, var_a, mu_b, var_b), expected)
    torch.testing.assert_close(symmetric_kl(mu_a, var_a, mu_b, var_b, reduction="mean"), expected / 7)


def test_wasserstein2_by_hand_and_by_quantiles():
    # N(0, 1) vs N(1, 4): (0 - 1)^2 + (1 - 2)^2 = 2
    assert wasserstein2(_t(0.0), _t(1.0), _t(1.0), _t(4.0)).item() == pytest.approx(2.0)
    # brute force in 1-D: W2^2 = integral over u of (F_a^-1(u) - F_b^-1(u))^2
    u = torch.linspace(0.5 / 20000, 1 - 0.5 / 20000, 20000, dtype=torch.float64)
    z = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0).icdf(u)
    mu_a, sd_a, mu_b, sd_b = 0.3, 0.7, -0.4, 1.6
    brute = ((mu_a + sd_a * z) - (mu_b + sd_b * z)).pow(2).mean()
    value = wasserstein2(_t(mu_a), _t(sd_a ** 2), _t(mu_b), _t(sd_b ** 2))
    assert value.item() == pytest.approx(brute.item(), rel=1e-3)


@pytest.mark.parametrize("divergence", [symmetric_kl, wasserstein2])
def test_divergences_zero_for_identical_and_symmetric(divergence):
    g = torch.Generator().manual_seed(1)
    mu, var = torch.randn(3, 8, generator=g), torch.rand(3, 8, generator=g) + 0.05
    mu2, var2 = torch.randn(3, 8, generator=g), torch.rand(3, 8, generator=g) + 0.05
    torch.testing.assert_close(divergence(mu, var, mu, var), torch.zeros(3))
    torch.testing.assert_close(divergence(mu, var, mu2, var2), divergence(mu2, var2, mu, var))
    assert (divergence(mu, var, mu2, var2) > 0).all()


def test_gaussian_stats_match_unbiased_variance():
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(11, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 2, 2, 2, 2, 3, 0, 2, 4])
    mean, var, count = gaussian_stats(feats, labels, 6, eps=1e-5)
    assert count.tolist() == [4, 0, 5, 1, 1, 0]
    for c in (0, 2):
        rows = feats[labels == c]
        torch.testing.assert_close(mean[c], rows.mean(0))
        torch.testing.assert_close(var[c], rows.var(0, unbiased=True) + 1e-5)
    torch.testing.assert_close(var[3], torch.full((4,), 1e-5, dtype=torch.float64))


@pytest.mark.parametrize("form", ["kl", "w2"])
def test_consistency_finite_for_collapsed_features(form):
    # every sample of an identity identical: zero variance in both modalities, different means
    feats = {"visible": torch.ones(4, 6, requires_grad=True),
             "infrared": torch.zeros(4, 6, requires_grad=True)}
    labels = {m: torch.zeros(4, dtype=torch.int64) for m in feats}
    loss, terms = distribution_consistency(feats, labels, form=form, eps=1e-5)
    assert terms == 1 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(torch.isfinite(f.grad).all() for f in feats.values())
    if form == "kl":  # (mu diff)^2 (1/eps + 1/eps) / 2 per dimension, mean over dimensions
        assert loss.item() == pytest.approx(1.0 / 1e-5, rel=1e-3)


@pytest.mark.parametrize("form", ["kl", "w2"])
def test_consistency_zero_for_identical_modalities(form):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(12, 5, generator=g)
    labels = torch.arange(3).repeat_interleave(4)
    loss, terms = distribution_consistency({"visible": x, "infrared": x.clone()},
                                           {"visible": labels, "infrared": labels}, form=form)
    assert terms == 3 and loss.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("form", ["kl", "w2"])
def test_consistency_by_brute_force_three_modalities(form):
    g = torch.Generator().manual_seed(4)
    names = THREE
    feats = {m: torch.randn(9, 3, generator=g, dtype=torch.float64) for m in names}
    # identity 5 has one sample in "tir": it is skipped for the pairs involving tir
    labels = {"visible": torch.tensor([0, 0, 0, 5, 5, 5, 7, 7, 7]),
              "nir": torch.tensor([0, 0, 5, 5, 5, 7, 7, 7, 7]),
              "tir": torch.tensor([0, 0, 0, 0, 5, 7, 7, 7, 7])}
    divergence = symmetric_kl if form == "kl" else wasserstein2
    values = []
    for a, b in itertools.combinations(names, 2):
        for pid in (0, 5, 7):
            xa, xb = feats[a][labels[a] == pid], feats[b][labels[b] == pid]
            if len(xa) < 2 or len(xb) < 2:
                continue
            values.append(divergence(xa.mean(0), xa.var(0) + 1e-5, xb.mean(0), xb.var(0) + 1e-5,
                                     reduction="mean"))
    loss, terms = distribution_consistency(feats, labels, form=form, eps=1e-5)
    assert terms == len(values) == 7
    torch.testing.assert_close(loss, torch.stack(values).mean())


def test_consistency_with_one_instance_is_zero_and_differentiable():
    feats = {m: torch.randn(4, 3, requires_grad=True) for m in TWO}
    labels = {m: torch.arange(4) for m in TWO}
    loss, terms = distribution_consistency(feats, labels, form="kl")
    assert terms == 0 and loss.item() == 0.0
    loss.backward()  # part of the graph, zero gradient
    assert all(f.grad is not None and (f.grad == 0).all() for f in feats.values())


def test_consistency_rejects_bad_arguments():
    feats = {m: torch.randn(4, 3) for m in TWO}
    labels = {m: torch.zeros(4, dtype=torch.int64) for m in TWO}
    with pytest.raises(ValueError, match="form"):
        distribution_consistency(feats, labels, form="js")
    with pytest.raises(ValueError, match="min_samples"):
        distribution_consistency(feats, labels, min_samples=1)


# ------------------------------------------------------------------------------------------------------
# triplets
# ------------------------------------------------------------------------------------------------------
def _triplet_batch(seed=5):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(12, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 3])
    groups = torch.tensor([0] * 6 + [1] * 6)
    return feats, labels, groups


def test_pair_masks_by_scope():
    _, labels, groups = _triplet_batch()
    for scope in ("all", "cross", "intra"):
        pos, neg = pair_masks(labels, groups, scope)
        for i, j in itertools.product(range(12), repeat=2):
            same_id, same_group = bool(labels[i] == labels[j]), bool(groups[i] == groups[j])
            group_ok = {"all": True, "cross": not same_group, "intra": same_group}[scope]
            assert bool(pos[i, j]) == (same_id and i != j and group_ok)
            assert bool(neg[i, j]) == (not same_id and group_ok)


@pytest.mark.parametrize("scope", ["all", "cross", "intra"])
def test_hard_triplet_by_brute_force(scope):
    feats, labels, groups = _triplet_batch()
    pos, neg = pair_masks(labels, groups, scope)
    terms = []
    for i in range(12):
        ps = [torch.dist(feats[i], feats[j]) for j in range(12) if pos[i, j]]
        ns = [torch.dist(feats[i], feats[j]) for j in range(12) if neg[i, j]]
        if ps and ns:
            terms.append(torch.relu(max(ps) - min(ns) + 0.3))
    value = triplet_loss(feats, labels, groups, kind="hard", scope=scope, margin=0.3)
    torch.testing.assert_close(value, torch.stack(terms).mean())


@pytest.mark.parametrize("scope", ["all", "cross"])
def test_weighted_triplet_by_brute_force(scope):
    feats, labels, groups = _triplet_batch()
    pos, neg = pair_masks(labels, groups, scope)
    terms = []
    for i in range(12):
        if not (pos[i].any() and neg[i].any()):
            continue
        dp = torch.stack([torch.dist(feats[i], feats[j]) for j in range(12) if pos[i, j]])
        dn = torch.stack([torch.dist(feats[i], feats[j]) for j in range(12) if neg[i, j]])
        far = (torch.exp(dp) / torch.exp(dp).sum() * dp).sum()
        close = (torch.exp(-dn) / torch.exp(-dn).sum() * dn).sum()
        terms.append(torch.log1p(torch.exp(far - close)))
    value = triplet_loss(feats, labels, groups, kind="weighted", scope=scope)
    torch.testing.assert_close(value, torch.stack(terms).mean())


def test_triplets_without_usable_anchor_are_zero_in_graph():
    feats = torch.randn(4, 3, requires_grad=True)
    labels = torch.arange(4)  # no positives
    dist = pairwise_euclidean(feats, feats)
    pos, neg = pair_masks(labels, torch.zeros(4, dtype=torch.int64), "all")
    for loss in (hard_triplet(dist, pos, neg), weighted_regularized_triplet(dist, pos, neg)):
        assert loss.item() == 0.0 and loss.requires_grad


def test_pairwise_euclidean_has_finite_gradient_on_the_diagonal():
    x = torch.randn(5, 4, requires_grad=True)
    d = pairwise_euclidean(x, x)
    off = ~torch.eye(5, dtype=torch.bool)  # never a pair; float32 cancellation leaves ~1e-3 there
    torch.testing.assert_close(d[off], torch.cdist(x, x)[off], atol=1e-5, rtol=1e-5)
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


# ------------------------------------------------------------------------------------------------------
# the method without the engine
# ------------------------------------------------------------------------------------------------------
def _build(cfg: DCBaselineConfig = DCBaselineConfig(), modalities=TWO, ids=6):
    from reidkit.config import ModelConfig
    from reidkit.method import BuildContext
    from reidkit.models.backbones import resnet_mini

    model_cfg = ModelConfig(stems="per-modality")
    def build_backbone(**overrides):
        return resnet_mini(dataclasses.replace(model_cfg, **overrides), modalities)

    build = BuildContext(modalities=modalities, num_train=ids * 8, num_train_ids=ids,
                         device=torch.device("cpu"), image_size=(32, 16), model=model_cfg,
                         build_backbone=build_backbone)
    torch.manual_seed(0)
    return DCBaseline(cfg, build)


def _batch(modalities=TWO, ids=3, k=2):
    from reidkit.method import ModalBatch

    labels = torch.arange(ids).repeat_interleave(k)
    return {m: ModalBatch(images=torch.randn(ids * k, 3, 32, 16), views=(), labels=labels,
                          indices=torch.arange(ids * k), cameras=torch.zeros(ids * k, dtype=torch.int64))
            for m in modalities}


@pytest.mark.parametrize("modalities", [TWO, THREE])
def test_loss_terms_and_their_switches(modalities):
    names = set(_build(modalities=modalities).training_step(_batch(modalities)))
    branch_terms = {f"{k}_{m}" for m in modalities for k in ("id", "tri_intra")}
    assert names == {"id_shared", "tri_shared", "gauss"} | branch_terms
    off = _build(DCBaselineConfig(branches=False, consistency="off"), modalities)
    off = off.training_step(_batch(modalities))
    assert set(off) == {"id_shared", "tri_shared"}


@pytest.mark.parametrize("space", ["neck", "normalized"])
def test_consistency_space(space):
    method = _build(DCBaselineConfig(consistency_space=space, consistency_weight=1.0))
    batch = _batch(k=2)
    shared, _ = method.net({m: batch[m].images for m in TWO})
    feats = {m: shared[m].feat for m in TWO}
    if space == "normalized":
        feats = {m: torch.nn.functional.normalize(f, dim=1) for m, f in feats.items()}
    labels = {m: batch[m].labels for m in TWO}
    expected, _ = distribution_consistency(feats, labels, form="w2", eps=1e-5)
    method_out = method._consistency({m: shared[m].feat for m in TWO}, labels)
    torch.testing.assert_close(method_out, expected)


def test_branches_are_independent_copies_of_layer4():
    method = _build()
    net = method.net
    assert set(net.branches) == set(TWO)
    a, b = net.branches["visible"].stage, net.branches["infrared"].stage
    assert a is not b and a is not net.backbone.layer4
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), net.backbone.layer4.parameters()):
        assert pa.data_ptr() != pb.data_ptr() != p0.data_ptr()
    # the visible branch gets no gradient from infrared images
    batch = _batch()
    out_shared, out_branch = net({m: batch[m].images for m in TWO})
    out_branch["infrared"].logits.sum().backward()
    assert all(p.grad is None for p in a.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in b.parameters())


def test_single_instance_batches_train_with_a_warning(caplog):
    method = _build()
    with caplog.at_level(logging.WARNING):
        losses = method.training_step(_batch(k=1))
    assert losses["gauss"].item() == 0.0 and losses["tri_intra_visible"].item() == 0.0
    assert all(torch.isfinite(v) for v in losses.values())
    assert "instances" in caplog.text
    sum(losses.values()).backward()


def test_test_features():
    method = _build().eval()
    images = torch.randn(3, 3, 32, 16)
    with torch.no_grad():
        shared = method.embed(images, "visible")
        both = _build(DCBaselineConfig(test_feature="shared+branch")).eval().embed(images, "visible")
    assert shared.shape == (3, 256) and both.shape == (3, 512)
    torch.testing.assert_close(both.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="branches"):
        _build(DCBaselineConfig(test_feature="shared+branch", branches=False))


def test_variance_eps_defaults_per_form():
    assert DCBaselineConfig().resolved_variance_eps() == 1e-5
    assert DCBaselineConfig(consistency="kl").resolved_variance_eps() == 0.1
    assert DCBaselineConfig(consistency="kl", variance_eps=1e-3).resolved_variance_eps() == 1e-3


def test_channel_exchange_only_on_visible_images():
    from PIL import Image

    from reidkit.data.transforms import train_transform

    assert _build(DCBaselineConfig(channel_exchange_p=0.0)).train_transforms("visible") is None
    assert _build().train_transforms("visible") is not None  # on by default (p = 0.5)
    method = _build(DCBaselineConfig(channel_exchange_p=1.0))
    assert method.train_transforms("infrared") is None
    (transform,) = method.train_transforms("visible")
    rgb = np.zeros((32, 16, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30
    torch.manual_seed(0)
    for _ in range(5):
        out = transform(Image.fromarray(rgb))
        assert out.shape == (3, 32, 16)
        # one channel (or the luma) copied to all three, except where random erasing (<= 40 % of the
        # area) writes its per-channel fill; an untouched image has no pixel with equal channels
        assert (out[0] == out[1]).float().mean() >= 0.6 and (out[1] == out[2]).float().mean() >= 0.6
    out = train_transform((32, 16))(Image.fromarray(rgb))
    assert (out[0] == out[1]).float().mean() == 0


def test_param_groups_split_backbone_and_heads():
    method = _build(DCBaselineConfig(backbone_lr=0.01))
    groups = method.param_groups()
    ids = [[id(p) for p in g["params"]] for g in groups]
    assert groups[0]["lr"] == 0.01 and "lr" not in groups[1]
    assert sorted(ids[0] + ids[1]) == sorted(id(p) for p in method.parameters() if p.requires_grad)
    assert id(method.net.classifier.weight) in ids[1]
    assert id(method.net.backbone.neck.bn.weight) in ids[1]
    assert id(next(method.net.branches["visible"].stage.parameters())) in ids[0]
    assert len(_build().param_groups()) == 1


# ------------------------------------------------------------------------------------------------------
# with the engine: plan, aligned sampler, contract, configs
# ------------------------------------------------------------------------------------------------------
def _context(dataset, method):
    from reidkit.method import EpochContext

    return EpochContext(epoch=0, num_epochs=1, train=dataset.train, modalities=dataset.modalities,
                        device=torch.device("cpu"), uses_labels=True, extract_fn=None, seed=0)


def _tiny(tmp_path, modalities=TWO, overrides=()):
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.engine.run import build_method_from
    from reidkit.testing import make_tiny_dataset, tiny_config

    root = make_tiny_dataset(tmp_path / "data", modalities=modalities)
    cfg = tiny_config(DCBaseline, root, overrides)
    dataset = GenericDataset.from_config(cfg.data)
    return cfg, dataset, build_method_from(DCBaseline, cfg, dataset, torch.device("cpu"))


def test_plan_relabels_ground_truth(tmp_path):
    cfg, dataset, method = _tiny(tmp_path)
    plan = method.prepare_epoch(_context(dataset, method))
    truth = np.array([s.person_id for s in dataset.train])
    assert plan.sampler == "aligned"
    assert sorted(set(plan.labels.tolist())) == list(range(len(set(truth.tolist()))))
    # the relabelling is a bijection with the ground truth
    assert len({(a, b) for a, b in zip(truth.tolist(), plan.labels.tolist())}) == len(set(truth.tolist()))
    assert plan.info["identities_in_all_modalities"] == plan.info["identities"]


@pytest.mark.parametrize("modalities", [TWO, THREE])
def test_aligned_sampler_draws_the_same_identities_in_every_modality(tmp_path, modalities):
    from reidkit.data.loaders import build_train_loader
    from reidkit.data.transforms import train_transform

    cfg, dataset, method = _tiny(tmp_path, modalities)
    plan = method.prepare_epoch(_context(dataset, method))
    views = {m: [train_transform((32, 16))] for m in modalities}
    loader = build_train_loader(dataset.train, plan, modalities=modalities, views=views, mask_transform=None,
                                batch_size=8, instances=2, iterations=3, workers=0, seed=0)
    for batch in loader:
        assert set(batch) == set(modalities)
        per_modality = [sorted(batch[m].labels.tolist()) for m in modalities]
        assert all(p == per_modality[0] for p in per_modality)
        counts = np.bincount(np.array(per_modality[0]))
        assert set(counts[counts > 0].tolist()) == {2}  # K = 2 per identity per modality
        for m in modalities:  # the labels are those of the drawn samples
            assert torch.equal(batch[m].labels, torch.from_numpy(plan.labels[batch[m].indices.numpy()]))
            assert all(dataset.train[i].modality == m for i in batch[m].indices.tolist())


def test_contract(tmp_path):
    from reidkit.testing import check_method

    check_method(DCBaseline, tmp_path)


def test_contract_three_modalities_kl_and_branch_feature(tmp_path):
    from reidkit.testing import check_method

    check_method(DCBaseline, tmp_path, modalities=THREE,
                 overrides=["method_args.consistency=kl", "method_args.test_feature=shared+branch"])


@pytest.mark.parametrize("name", ["synthetic", "synthetic-3m", "sysu_mm01", "regdb"])
def test_shipped_configs_resolve(name):
    from reidkit.config import resolve

    cfg = resolve("dc-baseline", config_file=ROOT / "configs" / "dc-baseline" / f"{name}.yaml",
                  method_defaults=DCBaseline.run_defaults, method_config=DCBaseline.Config)
    assert isinstance(cfg.method_args, DCBaselineConfig)
    assert cfg.model.stems == "per-modality"


def test_tiny_end_to_end_run(tmp_path):
    """Through ``run()``: run directory, metrics.json with every protocol, per-epoch loss terms."""
    import json

    from reidkit.engine.run import run
    from reidkit.testing import make_tiny_dataset, tiny_config

    root = make_tiny_dataset(tmp_path / "data")
    overrides = [f"output={tmp_path / 'run'}", "optim.epochs=2", "optim.warmup_epochs=1"]
    cfg = tiny_config(DCBaseline, root, overrides)
    run(cfg, device="cpu")
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert doc["method"] == "dc-baseline"
    assert set(doc["results"]) == {"visible-to-infrared", "infrared-to-visible"}
    assert len(doc["epochs"]) == 2
    for key in ("id_shared", "tri_shared", "gauss", "id_visible", "tri_intra_infrared"):
        assert f"loss_{key}" in doc["epochs"][-1]
