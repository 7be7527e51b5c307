"""P x K samplers: counts, outliers, alignment, rank shares, determinism."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from reidkit.data.samplers import AlignedPKSampler, PerModalityPKSampler

MODS = ["visible", "infrared"]


def toy_set(seed: int = 0):
    """Labels 0-9 in both modalities (3-6 images each), 10-11 visible only, 12 infrared only, outliers."""
    rng = np.random.default_rng(seed)
    labels, modality_ids = [], []
    for label in range(13):
        for modality in (0, 1):
            if (label in (10, 11) and modality == 1) or (label == 12 and modality == 0):
                continue
            n = int(rng.integers(3, 7))
            labels += [label] * n
            modality_ids += [modality] * n
    labels += [-1] * 20
    modality_ids += [0] * 10 + [1] * 10
    order = rng.permutation(len(labels))
    return np.array(labels, dtype=np.int64)[order], np.array(modality_ids, dtype=np.int64)[order]


def make(cls, labels, modality_ids, **kw):
    args = dict(batch_size=8, instances=2, iterations=5, seed=0)
    args.update(kw)
    return cls(labels, modality_ids, MODS, **args)


@pytest.mark.parametrize("cls", [PerModalityPKSampler, AlignedPKSampler])
def test_counts_membership_and_no_outliers(cls):
    labels, modality_ids = toy_set()
    sampler = make(cls, labels, modality_ids, iterations=20)
    steps = list(sampler)
    assert len(sampler) == len(steps) == 20
    for step in steps:
        assert list(step) == MODS
        for m, idx in step.items():
            assert idx.dtype == np.int64 and idx.shape == (8,)
            assert np.all(modality_ids[idx] == MODS.index(m))
            assert np.all(labels[idx] >= 0)
            per_label = Counter(labels[idx].tolist())
            assert len(per_label) == 4 and set(per_label.values()) == {2}
            # K consecutive indices per label, and distinct instances (every label has >= 3 images)
            assert all(len(set(labels[idx[i:i + 2]])) == 1 for i in range(0, 8, 2))
            assert len(set(idx.tolist())) == 8


def test_per_modality_draws_labels_present_in_each_modality():
    labels, modality_ids = toy_set()
    seen = {m: set() for m in MODS}
    for step in make(PerModalityPKSampler, labels, modality_ids, iterations=100):
        for m, idx in step.items():
            seen[m] |= set(labels[idx].tolist())
    assert seen["visible"] == set(range(12)) and seen["infrared"] == set(range(10)) | {12}
    # independent draws: the two modalities do not always get the same labels
    step = next(iter(make(PerModalityPKSampler, labels, modality_ids)))
    assert set(labels[step["visible"]]) != set(labels[step["infrared"]])


def test_aligned_same_identities_in_every_modality():
    labels, modality_ids = toy_set()
    seen = set()
    for step in make(AlignedPKSampler, labels, modality_ids, iterations=100):
        assert np.array_equal(labels[step["visible"]][::2], labels[step["infrared"]][::2])
        seen |= set(labels[step["visible"]].tolist())
    assert seen == set(range(10))  # 10-12 lack a modality


def test_small_labels_sampled_with_replacement_and_few_labels_repeat():
    labels = np.array([0, 1, 1, 1, 0, 1], dtype=np.int64)
    modality_ids = np.array([0, 0, 0, 0, 1, 1], dtype=np.int64)
    step = next(iter(make(PerModalityPKSampler, labels, modality_ids, batch_size=12, instances=3)))
    visible = Counter(labels[step["visible"]].tolist())
    # 2 labels for P = 4: each label at least once, then repeats; K = 3 per draw
    assert set(visible) == {0, 1} and sum(visible.values()) == 12
    assert all(n % 3 == 0 for n in visible.values())
    assert np.all(step["infrared"][labels[step["infrared"]] == 0] == 4)  # one image, drawn K times


@pytest.mark.parametrize("cls", [PerModalityPKSampler, AlignedPKSampler])
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_rank_shares_union_equals_single_process(cls, world_size):
    labels, modality_ids = toy_set()
    single = list(make(cls, labels, modality_ids))
    shares = [list(make(cls, labels, modality_ids, rank=r, world_size=world_size)) for r in range(world_size)]
    for t, step in enumerate(single):
        for m in MODS:
            parts = [shares[r][t][m] for r in range(world_size)]
            assert np.array_equal(np.concatenate(parts), step[m])
            assert all(len(p) > 0 for p in parts)


@pytest.mark.parametrize("cls", [PerModalityPKSampler, AlignedPKSampler])
def test_deterministic_for_seed_and_epoch(cls):
    labels, modality_ids = toy_set()

    def steps(sampler):
        return [np.concatenate([s[m] for m in MODS]) for s in sampler]

    a = make(cls, labels, modality_ids, seed=3)
    first = steps(a)
    assert all(np.array_equal(x, y) for x, y in zip(first, steps(a)))  # a second pass replays
    assert all(np.array_equal(x, y) for x, y in zip(first, steps(make(cls, labels, modality_ids, seed=3))))
    other = steps(make(cls, labels, modality_ids, seed=4))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))
    a.set_epoch(1)
    assert not all(np.array_equal(x, y) for x, y in zip(first, steps(a)))


def test_errors():
    labels, modality_ids = toy_set()
    only_outliers_in_ir = np.where(modality_ids == 1, -1, labels)
    with pytest.raises(ValueError, match="infrared"):
        make(PerModalityPKSampler, only_outliers_in_ir, modality_ids)
    disjoint = np.where(modality_ids == 1, labels + 100, labels)
    disjoint[labels < 0] = -1
    with pytest.raises(ValueError, match="every modality"):
        make(AlignedPKSampler, disjoint, modality_ids)
    with pytest.raises(ValueError, match="instances"):
        make(PerModalityPKSampler, labels, modality_ids, batch_size=2, instances=4)
    with pytest.raises(ValueError, match="ranks"):
        make(PerModalityPKSampler, labels, modality_ids, world_size=5)
    with pytest.raises(ValueError, match="equal in length"):
        PerModalityPKSampler(labels[:-1], modality_ids, MODS, batch_size=8, instances=2, iterations=1, seed=0)
