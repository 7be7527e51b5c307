"""CHCR: the hierarchy, the refinement rules, the losses, the contract and a tiny end-to-end run."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidkit.cluster import centre_by_modality, mutual_nearest_pairs, relabel
from reidkit_methods.chcr import CHCR, CHCRConfig
from reidkit_methods.chcr.hierarchy import cross_modality_merge, mixed_share, modality_presence
from reidkit_methods.chcr.losses import centroid_entries, modality_contrastive_loss
from reidkit_methods.chcr.refinement import (
    channel_overlap,
    plurality_main_label,
    refine_labels,
    soft_agreement,
    strict_agreement,
)


# -- hierarchy -----------------------------------------------------------------------------------------------
def _blobs(centres: np.ndarray, per: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    pts = np.repeat(centres, per, axis=0) + noise * rng.standard_normal((len(centres) * per, centres.shape[1]))
    return pts / np.linalg.norm(pts, axis=1, keepdims=True)


def test_mutual_nearest_pairs_need_both_directions_and_the_threshold():
    sim = torch.tensor([[0.9, 0.1], [0.8, 0.2]])  # row 1's best is col 0, but col 0 prefers row 0
    assert mutual_nearest_pairs(sim, -1.0) == [(0, 0, pytest.approx(0.9))]
    assert mutual_nearest_pairs(sim, 0.95) == []


def test_cross_merge_joins_matching_single_modality_clusters():
    rng = np.random.default_rng(0)
    ids = rng.standard_normal((4, 16))
    offset = 3.0 * rng.standard_normal(16)  # a modality offset: infrared = identity + offset
    vis = _blobs(ids, 5, 0.05, rng)
    ir = _blobs(ids + offset, 5, 0.05, rng)
    feats = torch.tensor(np.concatenate([vis, ir]), dtype=torch.float32)
    modality = np.repeat([0, 1], 20)
    level1 = np.concatenate([np.repeat([0, 1, 2, 3], 5), np.repeat([4, 5, 6, 7], 5)])
    result = cross_modality_merge(level1, feats, modality, threshold=0.0, rounds=2)
    identity = np.tile(np.repeat(np.arange(4), 5), 2)
    assert len(result.pairs) == 4
    # each merged cluster is exactly one identity in both modalities
    assert len(np.unique(result.labels)) == 4
    for k in np.unique(result.labels):
        assert len(np.unique(identity[result.labels == k])) == 1
    assert mixed_share(result.labels, modality, 2) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_cross_merge_merges_only_across_modalities(seed):
    """Random labels and features: the within-modality partition is unchanged, every merge is V-only + R-only."""
    rng = np.random.default_rng(seed)
    n = 120
    modality = rng.integers(0, 2, n)
    level1 = rng.integers(-1, 25, n)
    feats = F.normalize(torch.randn(n, 8, generator=torch.Generator().manual_seed(seed)), dim=1)
    result = cross_modality_merge(level1, feats, modality, threshold=-1.0, rounds=4)
    merged = result.labels
    assert ((merged < 0) == (level1 < 0)).all(), "outliers stay outliers, nothing else becomes one"
    for i, j in itertools.combinations(range(n), 2):
        if level1[i] < 0 or level1[j] < 0:
            continue
        if modality[i] == modality[j]:
            assert (merged[i] == merged[j]) == (level1[i] == level1[j]), "a same-modality pair changed"
        elif level1[i] == level1[j]:
            assert merged[i] == merged[j], "a level-1 cluster was split"
    before = relabel(level1)
    present = modality_presence(before, modality, 2)
    for a, b, _ in result.pairs:
        assert present[a].tolist() == [True, False], "a merged visible side holds infrared samples"
        assert present[b].tolist() == [False, True], "a merged infrared side holds visible samples"
        assert len(np.unique(merged[np.isin(before, [a, b])])) == 1
    sides = [a for a, _, _ in result.pairs] + [b for _, b, _ in result.pairs]
    assert len(sides) == len(set(sides)), "a cluster merged twice"


def test_cross_merge_threshold_blocks_dissimilar_pairs():
    feats = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    modality = np.array([0, 0, 1, 1])
    labels = np.array([0, 0, 1, 1])
    assert cross_modality_merge(labels, feats, modality, threshold=0.5, centre=False).pairs == []
    assert len(cross_modality_merge(labels, feats, modality, threshold=-0.5, centre=False).pairs) == 1


def test_centre_by_modality_removes_each_modality_mean():
    feats = F.normalize(torch.randn(10, 4), dim=1)
    modality = np.array([0] * 6 + [1] * 4)
    centred = centre_by_modality(feats, modality)
    assert torch.allclose(centred.norm(dim=1), torch.ones(10), atol=1e-5)
    shifted = feats.clone()
    shifted[6:] += torch.tensor([3.0, -1.0, 0.5, 2.0])  # a pure modality offset changes nothing
    assert torch.allclose(centre_by_modality(shifted, modality), centred, atol=1e-5)


# -- refinement ----------------------------------------------------------------------------------------------
def test_plurality_ignores_ties():
    main = np.array([0, 0, 1, 1, 2, 2, 2])
    chan = np.array([5, 5, 5, 5, 6, 6, 6])
    assert plurality_main_label(main, chan, np.ones(7, bool)) == {6: 2}


def test_strict_keeps_exactly_the_agreeing_samples():
    # six visible samples (0-5) and two infrared ones (6, 7)
    main = np.array([0, 0, 0, 1, 1, -1, 0, 1])
    candidates = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
    red = np.array([3, 3, 3, 4, 4, 4, 9, 9])      # agrees everywhere
    green = np.array([3, 3, 4, 4, 4, 3, 9, 9])    # sample 2 went to the cluster whose majority is main 1
    blue = np.array([3, 3, 3, 4, -1, 3, 9, 9])    # sample 4 is a blue outlier
    keep = strict_agreement(main, [red, green, blue], candidates)
    assert keep.tolist() == [True, True, False, True, False, False, False, False]
    result = refine_labels(main, [red, green, blue], candidates, rule="strict")
    assert result.labels.tolist() == [0, 0, -1, 1, -1, -1, 0, 1], "infrared labels are never touched"
    assert result.dropped.tolist() == [False, False, True, False, True, False, False, False]
    assert result.drop_rate == pytest.approx(2 / 5)


def test_strict_equals_brute_force_on_random_labels():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = 40
        main = rng.integers(-1, 5, n)
        chans = [rng.integers(-1, 5, n) for _ in range(3)]
        cand = rng.random(n) < 0.7
        keep = strict_agreement(main, chans, cand)
        for i in range(n):
            ok = cand[i] and main[i] >= 0
            for ch in chans:
                if not ok or ch[i] < 0:
                    ok = False
                    break
                voters = [main[j] for j in range(n) if cand[j] and main[j] >= 0 and ch[j] == ch[i]]
                values, counts = np.unique(voters, return_counts=True)
                top = counts == counts.max()
                ok = top.sum() == 1 and values[top][0] == main[i]
            assert keep[i] == ok


def test_soft_overlap_matches_the_definition():
    rng = np.random.default_rng(4)
    n = 30
    main = rng.integers(-1, 4, n)
    chan = rng.integers(-1, 4, n)
    cand = rng.random(n) < 0.8
    overlap = channel_overlap(main, chan, cand)
    valid = cand & (main >= 0) & (chan >= 0)
    for i in range(n):
        if not valid[i]:
            assert overlap[i] == 0
            continue
        s = set(np.flatnonzero(valid & (main == main[i])))
        s_c = set(np.flatnonzero(valid & (chan == chan[i])))
        assert overlap[i] == pytest.approx(len(s & s_c) / len(s | s_c))


def test_soft_rule_thresholds_the_mean_overlap():
    main = np.array([0, 0, 0, 0, 1, 1])
    cand = np.ones(6, bool)
    same = main.copy()
    split = np.array([0, 0, 1, 1, 2, 2])
    keep, score = soft_agreement(main, [same, split], cand, threshold=0.75)
    assert score.tolist() == pytest.approx([0.75, 0.75, 0.75, 0.75, 1.0, 1.0])
    assert keep.all()
    keep, _ = soft_agreement(main, [same, split], cand, threshold=0.8)
    assert keep.tolist() == [False] * 4 + [True] * 2


def test_refine_none_keeps_everything():
    main = np.array([0, 1, -1])
    result = refine_labels(main, [np.array([-1, -1, -1])], np.ones(3, bool), rule="none")
    assert result.labels.tolist() == [0, 1, -1] and result.drop_rate == 0.0


# -- losses ----------------------------------------------------------------------------------------------------
def test_modality_contrastive_loss_is_cross_entropy_over_the_other_modality():
    from reidkit.models.memory import ProxyMemory

    torch.manual_seed(0)
    centroids = F.normalize(torch.randn(3, 2, 8), dim=2)  # [K, (visible, infrared), D]
    mixed = torch.tensor([True, False, True])
    memory = ProxyMemory(8, temperature=0.05, momentum=0.2)
    memory.reset(*centroid_entries(centroids))
    feats = F.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    labels = torch.tensor([0, 1, 2, 1])
    loss = modality_contrastive_loss(memory, feats, labels, 0, mixed)  # visible samples
    logits = feats[[0, 2]] @ centroids[[0, 2], 1].T / 0.05          # against the infrared centroids
    assert torch.allclose(loss, F.cross_entropy(logits, torch.tensor([0, 1])))
    loss.backward()
    assert feats.grad[[0, 2]].abs().sum() > 0 and feats.grad[[1, 3]].abs().sum() == 0
    # the samples' own (visible) entries moved, the infrared ones did not
    assert not torch.allclose(memory.features[:3], centroids[:, 0])
    assert torch.allclose(memory.features[3:], centroids[:, 1])
    none = modality_contrastive_loss(memory, feats, torch.tensor([1, 1, 1, 1]), 1, mixed)
    assert none.item() == 0.0 and none.requires_grad


# -- the method ------------------------------------------------------------------------------------------------
def test_outliers_as_instances_get_their_own_labels():
    from reidkit_methods.chcr.method import as_instances

    assert as_instances(np.array([0, -1, 1, -1, 0])).tolist() == [0, 2, 1, 3, 0]


def test_config_rejects_unknown_views():
    from reidkit.config import ConfigError

    with pytest.raises(ConfigError):
        CHCRConfig(visible_views=("sepia",))


LADDER = {
    "baseline": ["method_args.hierarchy=none", "method_args.refinement=none"],
    "hierarchical": ["method_args.hierarchy=cross-merge", "method_args.refinement=none"],
    "full-soft": ["method_args.hierarchy=cross-merge", "method_args.refinement=soft"],
    "centred": ["method_args.hierarchy=modality-centred", "method_args.refinement=strict"],
    "instances": ["method_args.outliers=instances"],
    "merge-by-masks": ["method_args.merge_features=masks"],
}


def test_contract_full_method(tmp_path):
    from reidkit.testing import check_method

    results = check_method(CHCR, tmp_path)
    assert results


@pytest.mark.parametrize("rung", sorted(LADDER))
def test_every_switch_plans_and_trains(tmp_path, rung):
    """Each ablation switch: a valid plan and finite losses from a real batch (the full fit is checked once,
    by the contract test of the default configuration)."""
    from reidkit.data.loaders import build_train_loader

    method, trainer, dataset = _tiny_method(tmp_path, LADDER[rung])
    plan = method.prepare_epoch(trainer.epoch_context(0))
    assert (plan.labels >= 0).any() and len(np.unique(plan.labels[plan.labels >= 0])) >= 2
    views = {m: list(method.train_transforms(m)) for m in dataset.modalities}
    loader = build_train_loader(dataset.train, plan, modalities=dataset.modalities, views=views,
                                mask_transform=None, batch_size=8, instances=2, iterations=1, workers=0, seed=0)
    losses = method.training_step(next(iter(loader)))
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


def _tiny_method(tmp_path, overrides=()):
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.engine.run import build_method_from
    from reidkit.engine.trainer import Trainer
    from reidkit.testing import make_tiny_dataset, tiny_config

    root = make_tiny_dataset(tmp_path / "data")
    cfg = tiny_config(CHCR, root, overrides)
    dataset = GenericDataset.from_config(cfg.data)
    method = build_method_from(CHCR, cfg, dataset, torch.device("cpu"))
    return method, Trainer(method, dataset, cfg, device=torch.device("cpu")), dataset


def test_merge_by_masks_matches_the_mask_features(tmp_path, monkeypatch):
    """merge_features=masks hands the cross-merge the features of the masks, not of the images."""
    import reidkit_methods.chcr.method as chcr_method

    seen = []
    real_merge = chcr_method.cross_modality_merge

    def spy(labels, features, *args, **kwargs):
        seen.append(features)
        return real_merge(labels, features, *args, **kwargs)

    monkeypatch.setattr(chcr_method, "cross_modality_merge", spy)
    method, trainer, dataset = _tiny_method(tmp_path, ["method_args.merge_features=masks",
                                                       "method_args.refinement=none"])
    method.eval()
    ctx = trainer.epoch_context(0)
    plan = method.prepare_epoch(ctx)
    masks, images = ctx.extract(source="mask"), ctx.features()
    assert len(seen) == 1 and torch.allclose(seen[0], masks)
    assert not torch.allclose(masks, images)
    assert plan.info["time_mask_features_s"] >= 0


def test_merge_by_masks_without_masks_says_what_to_set(tmp_path):
    import dataclasses

    from reidkit.method import MissingMasksError

    method, trainer, dataset = _tiny_method(tmp_path, ["method_args.merge_features=masks"])
    assert method.needs_mask_features and not method.needs_masks  # embedded for the merge, not in batches
    dataset.train[0] = dataclasses.replace(dataset.train[0], mask_path=None)
    with pytest.raises(MissingMasksError, match=r"1 of \d+ have none.*data\.mask_root"):  # a ConfigError
        trainer.fit()


def test_plan_details_hold_each_stage_labels(tmp_path):
    """What benchmarks/chcr_diagnostics.py reads: every stage's labels, in the plan (the method keeps none)."""
    method, trainer, dataset = _tiny_method(tmp_path, ["method_args.hierarchy=cross-merge",
                                                       "method_args.refinement=strict"])
    plan = method.prepare_epoch(trainer.epoch_context(0))
    details = plan.details
    assert {"level1", "hierarchy", "merged_pairs"} <= set(details) and not hasattr(method, "stages")
    assert details["level1"].shape == details["hierarchy"].shape == (len(dataset.train),)
    if "channels" in details:  # refinement ran (it needs at least one cluster)
        assert len(details["channels"]) == 3 and details["dropped"].shape == (len(dataset.train),)


def test_losses_are_finite_and_reach_the_backbone(tmp_path):
    from reidkit.method import ModalBatch

    method, trainer, dataset = _tiny_method(tmp_path)
    ctx = trainer.epoch_context(0)
    plan = method.prepare_epoch(ctx)
    assert {"time_cluster_s", "refine_drop_rate", "eps_used", "merged_pairs"} <= set(plan.info)
    # memories from hand-made labels (the identities: every cluster mixed), so that both terms are active;
    # an untrained model on toy data rarely gives the two mixed clusters the modality loss needs
    truth = np.array([s.person_id for s in dataset.train])
    is_visible = ctx.modality_ids == dataset.modalities.index("visible")
    method.reset_memories(ctx.features(), truth, is_visible)
    assert bool(method.mixed.all())
    batch = {}
    for m in dataset.modalities:
        rows = np.flatnonzero(ctx.modality_ids == dataset.modalities.index(m))[::3]
        images = torch.randn(len(rows), 3, 32, 16)
        batch[m] = ModalBatch(images=images, views=(images,), labels=torch.as_tensor(truth[rows]),
                              indices=torch.as_tensor(rows), cameras=torch.zeros(len(rows), dtype=torch.int64))
    method.train()
    losses = method.training_step(batch)
    assert set(losses) == {"cluster", "modality"}
    for name, value in losses.items():
        assert torch.isfinite(value) and value > 0, name
        method.zero_grad(set_to_none=True)
        value.backward(retain_graph=True)
        stem = next(method.backbone.stems.parameters())
        assert stem.grad is not None and stem.grad.abs().sum() > 0, f"loss '{name}' does not reach the stem"


def test_tiny_end_to_end_run(tmp_path):
    import json

    from reidkit.engine.run import resolve_run_config, run
    from reidkit.testing import TINY_OVERRIDES, make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data")
    cfg = resolve_run_config("chcr", overrides=[*TINY_OVERRIDES, f"data.root={root}", "optim.epochs=2",
                                                f"output={tmp_path / 'run'}"])
    doc = run(cfg, device="cpu")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["method"] == "chcr" and len(saved["epochs"]) == 2
    for record in saved["epochs"]:
        for key in ("clusters", "outliers", "mixed_cluster_share", "refine_drop_rate", "label_ari",
                    "time_cluster_s", "loss_cluster"):
            assert key in record, key
    assert doc["results"] and all(0 <= r["mAP"] <= 1 for r in doc["results"].values())


def test_synthetic_config_states_the_code_defaults(shipped_config):
    from reidkit.config import to_dict
    from reidkit.engine.run import resolve_run_config

    assert to_dict(shipped_config("chcr", "synthetic")) == to_dict(resolve_run_config("chcr"))


@pytest.mark.parametrize("name", ["sysu_mm01", "regdb", "llcm"])
def test_gpu_configs_resolve(name, shipped_config):
    cfg = shipped_config("chcr", name)
    assert cfg.data.dataset == name and cfg.model.backbone == "resnet50"
    assert (cfg.data.height, cfg.data.width) == (288, 144)
