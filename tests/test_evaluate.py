"""evaluate(), exclusion masks and the seeded gallery sampler."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from reidkit.data.datasets.base import Protocol
from reidkit.data.records import Sample
from reidkit.evaluation import evaluate, ignore_mask
from reidkit.evaluation.protocols import seeded_gallery
from reidkit.registry import EXCLUSIONS


def s(name: str, pid: int, cam: int, modality: str = "visible") -> Sample:
    return Sample(f"/data/{modality}/{name}.jpg", pid, cam, modality)


# ----------------------------------------------------------------------------------------- exclusion
def test_every_exclusion_rule_is_implemented():
    q, g = [s("q", 1, 3)], [s("g", 1, 2)]
    assert {"none", "same-id-same-camera", "sysu-location", "aligned-twin"} <= set(EXCLUSIONS.names())
    for rule in EXCLUSIONS.names():
        assert ignore_mask(rule, q, g).shape == (1, 1)
    with pytest.raises(ValueError, match="unknown exclusion rule"):
        ignore_mask("same-room", q, g)


def test_sysu_location_rule_ignores_identity():
    query = [s("q1", 1, 3, "infrared"), s("q2", 1, 6, "infrared")]
    gallery = [s("a", 1, 2), s("b", 2, 2), s("c", 1, 1), s("d", 2, 4)]
    mask = ignore_mask("sysu-location", query, gallery)
    assert mask.tolist() == [[True, True, False, False], [False, False, False, False]]


def test_market_rule_needs_same_identity_and_camera():
    query = [s("q", 1, 3)]
    gallery = [s("a", 1, 3), s("b", 2, 3), s("c", 1, 4)]
    assert ignore_mask("same-id-same-camera", query, gallery).tolist() == [[True, False, False]]
    assert not ignore_mask("none", query, gallery).any()


def test_aligned_twin_rule_original_and_imsl_names():
    # original release: twins share the file name across RGB / NI / TI folders
    q = [Sample("/r/test/RGB/000001_cam1_0_01.jpg", 1, 1, "visible")]
    g = [Sample("/r/test/NI/000001_cam1_0_01.jpg", 1, 1, "nir"),
         Sample("/r/test/NI/000001_cam1_0_02.jpg", 1, 1, "nir"),
         Sample("/r/test/TI/000001_cam1_0_01.jpg", 1, 1, "tir")]
    assert ignore_mask("aligned-twin", q, g).tolist() == [[True, False, True]]
    # IMSL's renamed files: the modality sits in the camera slot (_c1 RGB, _c2 NI, _c3 TI)
    q = [Sample("/r/test_rgb/000002_c1_0007.jpg", 2, 1, "visible")]
    g = [Sample("/r/test_ni/000002_c2_0007.jpg", 2, 2, "nir"),
         Sample("/r/test_ni/000002_c2_0008.jpg", 2, 2, "nir")]
    assert ignore_mask("aligned-twin", q, g).tolist() == [[True, False]]


# --------------------------------------------------------------------------------------- samplers
def test_seeded_gallery_reproduces_random_seed_then_choice():
    groups = [[0, 1, 2], [3], [4, 5, 6, 7, 8], [], [9, 10]]
    for trial in range(10):
        random.seed(trial)  # the AGW / DEEN code: global seed, then random.choice per group in order
        want = [random.choice(g) for g in groups if g]
        assert seeded_gallery(groups, trial).tolist() == want
    multi = seeded_gallery(groups, 0, shots=2)
    assert len(multi) == 2 + 1 + 2 + 2 and {3, 9, 10} <= set(multi.tolist())


# -------------------------------------------------------------------------------------- evaluate()
FEATURES = {  # 2-D unit vectors; inner products decide the ranking
    "qa": [1.0, 0.0], "qb": [0.0, 1.0],
    "ga1": [1.0, 0.0], "ga2": [0.0, 1.0], "gb1": [0.0, 1.0], "gb2": [0.6, 0.8],
}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, samples):
        names = [sample.path.rsplit("/", 1)[-1][:-4] for sample in samples]
        self.calls.append(names)
        return torch.tensor([FEATURES[n] for n in names])


def two_trial_protocol(**kw) -> Protocol:
    query = [s("qa", 1, 3, "infrared"), s("qb", 2, 3, "infrared")]
    pool = [s("ga1", 1, 1), s("ga2", 1, 1), s("gb1", 2, 1), s("gb2", 2, 1)]
    # trial 0: ga1, gb1 -> both queries rank their identity first (rank1 1, mAP 1)
    # trial 1: ga2, gb2 -> qa: gb2 (0.6) > ga2 (0) -> rank 2; qb: ga2 (1.0) > gb2 (0.8) -> rank 2
    return Protocol("demo", query, pool, [np.array([0, 2]), np.array([1, 3])], exclusion="none",
                    info={"sampler": "hand-made"}, **kw)


def test_evaluate_averages_trials_and_extracts_once():
    features = Recorder()
    out = evaluate(features, two_trial_protocol())
    assert out["trials"] == 2 and out["sampler"] == "hand-made"
    assert out["rank1"] == pytest.approx((1.0 + 0.0) / 2)
    assert out["mAP"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["mINP"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["rank5"] == 1.0
    assert len(out["cmc"]) == 20 and out["cmc"][:2] == pytest.approx([0.5, 1.0])
    assert features.calls == [["qa", "qb"], ["ga1", "ga2", "gb1", "gb2"]]  # query once, union once
    first = evaluate(Recorder(), two_trial_protocol(), max_trials=1)
    assert first["trials"] == 1 and first["rank1"] == 1.0 and first["mAP"] == 1.0


def test_evaluate_applies_the_protocols_exclusion():
    protocol = two_trial_protocol()
    protocol.exclusion = "sysu-location"
    protocol.gallery_pool = [Sample(x.path, x.person_id, 2 if x.path.endswith("gb2.jpg") else 1, x.modality)
                             for x in protocol.gallery_pool]
    out = evaluate(Recorder(), protocol)
    # trial 1 without gb2 (camera 2): qa ranks ga2 first (rank 1); qb has no match left (not counted)
    assert out["rank1"] == pytest.approx((1.0 + 1.0) / 2)
