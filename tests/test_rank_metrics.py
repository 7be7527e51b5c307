"""rank_metrics: hand-computed golden cases and agreement with the per-query reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidkit.evaluation import rank, rank_metrics
from reidkit.evaluation.reference import rank_metrics_reference

KEYS = ("mAP", "mINP", "rank1", "rank5", "rank10", "rank20", "num_valid", "num_queries")


def assert_same(got: dict, want: dict) -> None:
    for key in KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    np.testing.assert_allclose(got["cmc"], want["cmc"], atol=1e-12)


# ---------------------------------------------------------------------------------------------- golden
def test_ap_and_inp_by_hand():
    # query identity 1; ranking: g3 (id 2), g0 (id 1), g2 (id 3), g1 (id 1) -> true matches at ranks 2 and 4
    dist = np.array([[0.2, 0.4, 0.3, 0.1]])
    out = rank_metrics(dist, [1], [1, 1, 3, 2])
    assert out["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert out["mINP"] == pytest.approx(2 / 4)
    assert out["rank1"] == 0.0 and out["rank5"] == 1.0
    np.testing.assert_allclose(out["cmc"][:3], [0.0, 1.0, 1.0])
    assert out["cmc"].shape == (20,)


def test_means_over_queries_by_hand():
    dist = np.array([[0.1, 0.9, 0.5],    # id 7: match at rank 1        -> AP 1, INP 1
                     [0.1, 0.9, 0.5]])   # id 8: match at rank 3        -> AP 1/3, INP 1/3
    out = rank_metrics(dist, [7, 8], [7, 9, 9])
    assert out["num_valid"] == 1  # id 8 has no gallery entry: not counted
    dist = np.array([[0.1, 0.9, 0.5], [0.1, 0.9, 0.5]])
    out = rank_metrics(dist, [7, 8], [7, 8, 9])
    assert out["num_valid"] == 2
    assert out["mAP"] == pytest.approx((1 + 1 / 3) / 2)
    assert out["mINP"] == pytest.approx((1 + 1 / 3) / 2)
    assert out["rank1"] == pytest.approx(0.5)
    np.testing.assert_allclose(out["cmc"][:3], [0.5, 0.5, 1.0])


def test_dedup_cmc_counts_each_identity_once_but_map_uses_full_list():
    # ranking: B, B, C, A (true match)  -> plain rank 4, deduplicated identity rank 3 (B, C, A)
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    ids = ["B", "B", "C", "A"]
    plain = rank_metrics(dist, ["A"], ids, max_rank=5)
    dedup = rank_metrics(dist, ["A"], ids, dedup_cmc=True, max_rank=5)
    np.testing.assert_allclose(plain["cmc"], [0, 0, 0, 1, 1])
    np.testing.assert_allclose(dedup["cmc"], [0, 0, 1, 1, 1])
    assert plain["mAP"] == dedup["mAP"] == pytest.approx(1 / 4)
    assert plain["mINP"] == dedup["mINP"] == pytest.approx(1 / 4)


def test_sysu_camera3_query_skips_camera2_whatever_the_identity():
    # gallery: A@cam2 0.10, B@cam2 0.05, B@cam1 0.20, A@cam1 0.30; queries: A@cam3 and A@cam6
    g_ids, g_cams = np.array([0, 1, 1, 0]), np.array([2, 2, 1, 1])
    dist = np.array([[0.10, 0.05, 0.20, 0.30]] * 2)
    q_cams = np.array([3, 6])
    ignore = (q_cams[:, None] == 3) & (g_cams[None, :] == 2)
    out = rank_metrics(dist, [0, 0], g_ids, ignore=ignore, dedup_cmc=True)
    # cam3 query sees B@cam1, A@cam1 -> rank 2, AP 1/2;
    # cam6 query sees B2, A2, B1, A1 -> rank 2, AP (1/2 + 2/4) / 2
    assert out["rank1"] == 0.0 and out["cmc"][1] == 1.0
    assert out["mAP"] == pytest.approx((1 / 2 + (1 / 2 + 2 / 4) / 2) / 2)
    assert out["mINP"] == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_query_whose_matches_are_all_ignored_is_not_counted():
    dist = np.array([[0.1, 0.2], [0.1, 0.2]])
    ignore = np.array([[True, False], [False, False]])
    out = rank_metrics(dist, [0, 0], [0, 1], ignore=ignore)
    assert out["num_valid"] == 1 and out["num_queries"] == 2
    assert out["rank1"] == 1.0
    with pytest.raises(ValueError, match="no|none"):
        rank_metrics(dist, [0, 0], [0, 1], ignore=np.array([[True, False], [True, False]]))


def test_ties_keep_gallery_order():
    dist = np.array([[0.5, 0.5, 0.5]])
    assert rank_metrics(dist, [1], [2, 1, 1])["rank1"] == 0.0  # id 2 comes first at equal distance
    assert rank_metrics(dist, [1], [1, 2, 1])["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert rank_metrics(dist, [1], [2, 3, 1], dedup_cmc=True, max_rank=3)["cmc"].tolist() == [0, 0, 1]


def test_torch_input_and_integer_distances():
    dist = torch.tensor([[3, 1, 2]])
    out = rank_metrics(dist, torch.tensor([5]), torch.tensor([5, 6, 7]))
    assert out["mAP"] == pytest.approx(1 / 3)


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="NaN"):
        rank_metrics(np.array([[np.nan, 1.0]]), [0], [0, 1])
    with pytest.raises(ValueError, match="gallery_ids"):
        rank_metrics(np.zeros((1, 2)), [0], [0, 1, 2])
    with pytest.raises(ValueError, match="ignore"):
        rank_metrics(np.zeros((1, 2)), [0], [0, 1], ignore=np.zeros((2, 2), bool))


# ------------------------------------------------------------------------------------ vs the reference
def random_case(rng: np.random.Generator) -> dict:
    q, g, k = rng.integers(1, 40), rng.integers(1, 60), rng.integers(1, 10)
    query_ids = rng.integers(0, k + 2, q)  # some identities absent from the gallery
    gallery_ids = rng.integers(0, k, g)  # not grouped by identity
    if rng.random() < 0.4:
        dist = rng.integers(0, 4, (q, g)).astype(np.float64)  # many ties
    else:
        dist = rng.standard_normal((q, g)).astype(rng.choice([np.float32, np.float64]))
    ignore = rng.random((q, g)) < rng.uniform(0, 0.6) if rng.random() < 0.7 else None
    return dict(dist=dist, query_ids=query_ids, gallery_ids=gallery_ids, ignore=ignore,
                dedup_cmc=bool(rng.random() < 0.5), max_rank=int(rng.integers(1, 25)))


@pytest.mark.parametrize("seed", range(40))
def test_matches_reference_on_random_cases(seed):
    case = random_case(np.random.default_rng(seed))
    try:
        want = rank_metrics_reference(**case)
    except ValueError:
        with pytest.raises(ValueError):
            rank_metrics(**case)
        return
    assert_same(rank_metrics(**case), want)


@pytest.mark.parametrize("dedup", [False, True])
def test_matches_reference_across_chunks(monkeypatch, dedup):
    monkeypatch.setattr(rank, "_CHUNK_ELEMENTS", 64)  # several query chunks and tie batches
    rng = np.random.default_rng(7)
    dist = rng.integers(0, 6, (50, 30)).astype(np.float32)
    q_ids, g_ids = rng.integers(0, 8, 50), rng.integers(0, 8, 30)
    ignore = rng.random((50, 30)) < 0.2
    assert_same(rank_metrics(dist, q_ids, g_ids, ignore=ignore, dedup_cmc=dedup),
                rank_metrics_reference(dist, q_ids, g_ids, ignore=ignore, dedup_cmc=dedup))


def test_matches_reference_on_a_realistic_protocol():
    """SYSU-like: many cameras per identity, camera-3 rule, deduplicated CMC, float32 features."""
    rng = np.random.default_rng(0)
    g_ids, g_cams = np.repeat(np.arange(60), 4), np.tile([1, 2, 4, 5], 60)
    q_ids, q_cams = np.repeat(np.arange(60), 5), rng.choice([3, 6], 300)
    centres = rng.standard_normal((60, 32)).astype(np.float32)
    q = centres[q_ids] + rng.standard_normal((300, 32)).astype(np.float32)
    g = centres[g_ids] + rng.standard_normal((240, 32)).astype(np.float32)
    dist = -(q @ g.T)
    ignore = (q_cams[:, None] == 3) & (g_cams[None, :] == 2)
    want = rank_metrics_reference(dist, q_ids, g_ids, ignore=ignore, dedup_cmc=True)
    assert 0.0 < want["rank1"] < 1.0
    assert_same(rank_metrics(dist, q_ids, g_ids, ignore=ignore, dedup_cmc=True), want)
