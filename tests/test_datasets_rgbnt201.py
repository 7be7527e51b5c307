"""RGBNT201: both layouts; the nine protocols; the aligned-twin switch on hand-computed features.

The list rules pinned here are those of IMSL's code (github.com/zqpang/IMSL, ``imsl/datasets/rgbnt201.py``:
``<pid>_c<m>`` names, pid -1 skipped, RGB queries against the NI gallery) and of the multi-modality
papers' RGBNT201 loaders (e.g. github.com/924973292/TOP-ReID, ``data/datasets/RGBNT201.py``: one file name
per aligned RGB / NI / TI capture, pid = the 6 leading digits, camera = the digit after ``cam``), as
documented in ``reidkit.data.datasets.rgbnt201``.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidkit.config import DataConfig
from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.rgbnt201 import RGBNT201
from reidkit.evaluation import evaluate, ignore_mask, rank_metrics

TEST_CAPTURES = ["000001_cam1_01", "000001_cam2_02", "000002_cam1_03"]
TRAIN_CAPTURES = ["000010_cam1_01", "000010_cam3_02", "000011_cam4_01"]


def write_original(root: Path, train_folder: str = "train_171") -> Path:
    for split, captures in ((train_folder, TRAIN_CAPTURES), ("test", TEST_CAPTURES)):
        for folder in ("RGB", "NI", "TI"):
            (root / split / folder).mkdir(parents=True)
            for name in captures:
                (root / split / folder / f"{name}.jpg").touch()
    return root


def write_imsl(root: Path, with_ti: bool = False) -> Path:
    folders = {"rgb": 1, "ni": 2, "ti": 3}
    for tag, code in folders.items():
        (root / f"train_{tag}").mkdir(parents=True)
        for pid in (10, 11):
            (root / f"train_{tag}" / f"{pid:04d}_c{code}_0001.jpg").touch()
        if tag != "ti" or with_ti:
            (root / f"test_{tag}").mkdir()
            for pid, index in ((1, 1), (1, 2), (2, 3), (-1, 9)):
                (root / f"test_{tag}" / f"{pid:04d}_c{code}_{index:04d}.jpg").touch()
    return root


def load(root: Path, **kw) -> RGBNT201:
    args = RGBNT201.Config(exclude_aligned_twin=kw.pop("exclude_aligned_twin", False))
    return RGBNT201.from_config(DataConfig(dataset="rgbnt201", root=str(root), **kw), args)


def test_original_layout(tmp_path):
    data = load(write_original(tmp_path / "RGBNT201").parent)  # the parent folder is accepted
    assert data.modalities == ("visible", "nir", "tir")
    assert data.check_report()["train"] == {m: {"images": 3, "ids": 2} for m in ("nir", "tir", "visible")}
    assert {s.camera for s in data.train} == {1, 3, 4}  # physical views kept
    assert sorted(data.protocols) == sorted([
        "visible-to-nir", "visible-to-tir", "nir-to-visible", "nir-to-tir", "tir-to-visible", "tir-to-nir",
        "visible-to-nir+tir", "nir-to-visible+tir", "tir-to-visible+nir"])
    both = data.protocols["nir-to-visible+tir"]
    assert len(both.query) == 3 and len(both.gallery(0)) == 6
    assert {s.modality for s in both.gallery(0)} == {"visible", "tir"}
    assert both.exclusion == "none" and both.info == {"layout": "original", "aligned_twin": "kept"}
    assert load(tmp_path, exclude_aligned_twin=True).protocols["visible-to-nir"].exclusion == "aligned-twin"
    assert load(write_original(tmp_path / "other", train_folder="train")).num_train_ids == 2


def test_imsl_layout(tmp_path):
    data = load(write_imsl(tmp_path / "rgbnt201"))
    assert data.check_report()["protocols"] == {"visible-to-nir": {"query": 3, "gallery": 3, "trials": 1},
                                                "nir-to-visible": {"query": 3, "gallery": 3, "trials": 1}}
    assert {(s.modality, s.camera) for s in data.train} == {("visible", 1), ("nir", 2), ("tir", 3)}
    assert all(s.person_id != -1 for p in data.protocols.values() for s in p.query)  # junk skipped
    assert any("tir" in n for n in data.notes)  # no test_ti/: its protocols are unavailable
    assert len(load(write_imsl(tmp_path / "full", with_ti=True)).protocols) == 9


def test_wrong_names_and_roots(tmp_path):
    root = write_imsl(tmp_path / "rgbnt201")
    (root / "test_ni" / "0001_c1_0005.jpg").touch()  # an RGB tag in the NI folder
    with pytest.raises(DatasetError, match="c1 tag"):
        load(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="train_171"):
        load(tmp_path / "empty")


def test_aligned_twin_switch_on_hand_computed_features(tmp_path):
    root = write_original(tmp_path / "RGBNT201")
    capture = {"01": [1.0, 0.0], "02": [0.6, 0.8], "03": [0.8, 0.6]}  # twins share a capture's vector

    def features(samples):
        return torch.tensor([capture[Path(s.path).stem[-2:]] for s in samples])

    kept = evaluate(features, load(root).protocols["visible-to-nir"])
    # each query's twin is its nearest neighbour; ids 1 have a second match at rank 3: AP (1 + 2/3) / 2
    assert kept["rank1"] == 1.0
    assert kept["mAP"] == pytest.approx((5 / 6 + 5 / 6 + 1) / 3)
    assert kept["aligned_twin"] == "kept"
    excluded = evaluate(features, load(root, exclude_aligned_twin=True).protocols["visible-to-nir"])
    # without twins: id-1 queries find the other id-1 capture second (AP 1/2); the id-2 query has no match
    assert excluded["rank1"] == 0.0 and excluded["mAP"] == pytest.approx(1 / 2)
    assert excluded["aligned_twin"] == "excluded"


def test_masks_are_found_in_the_usual_places(tmp_path):
    root = write_imsl(tmp_path / "rgbnt201")
    (root / "mask").mkdir()
    (root / "mask" / "0010_c1_0001.png").touch()  # IMSL's flat mask folder, picked up by default
    data = load(root)
    with_mask = {Path(s.path).name for s in data.train if s.mask_path}
    assert with_mask == {"0010_c1_0001.jpg"}
    masks = tmp_path / "masks"
    (masks / "test" / "nir" / "1").mkdir(parents=True)  # reidkit's generic mask layout
    (masks / "test" / "nir" / "1" / "0001_c2_0002.png").touch()
    (masks / "train_ti").mkdir(parents=True)  # a mirror of the dataset tree
    (masks / "train_ti" / "0011_c3_0001.png").touch()
    data = load(root, mask_root=str(masks))
    assert {Path(s.mask_path).name for s in data.train if s.mask_path} == {"0011_c3_0001.png"}
    query = data.protocols["nir-to-visible"].query
    assert [Path(s.path).name for s in query if s.mask_path] == ["0001_c2_0002.jpg"]


def names(samples) -> list[str]:
    return [Path(s.path).name for s in samples]


def test_imsl_lists_follow_imsl_rules(tmp_path):
    root = write_imsl(tmp_path / "rgbnt201")
    (root / "test_rgb" / "0000_c1_0004.jpg").touch()  # pid 0 is a person (IMSL keeps it)
    data = load(root)
    protocol = data.protocols["visible-to-nir"]  # what IMSL's evaluator scores
    assert names(protocol.query) == ["0000_c1_0004.jpg", "0001_c1_0001.jpg", "0001_c1_0002.jpg",
                                     "0002_c1_0003.jpg"]  # -1 (junk) skipped
    assert names(protocol.gallery(0)) == ["0001_c2_0001.jpg", "0001_c2_0002.jpg", "0002_c2_0003.jpg"]
    assert [s.person_id for s in protocol.query] == [0, 1, 1, 2]
    assert {s.camera for s in protocol.query} == {1} and {s.camera for s in protocol.gallery(0)} == {2}
    # IMSL's own rule (same id and same camera slot) never fires, since the slot holds the modality:
    # keeping the twins (the default) is exactly IMSL's evaluation
    assert not ignore_mask("same-id-same-camera", protocol.query, protocol.gallery(0)).any()
    assert protocol.exclusion == "none" and len(protocol.trials) == 1 and not protocol.dedup_cmc


def test_original_lists_are_the_multimodal_triplets(tmp_path):
    data = load(write_original(tmp_path / "RGBNT201"))
    by_modality = {"visible": data.protocols["visible-to-nir"].query,
                   "nir": data.protocols["visible-to-nir"].gallery(0),
                   "tir": data.protocols["visible-to-tir"].gallery(0)}
    want = [f"{c}.jpg" for c in sorted(TEST_CAPTURES)]
    for modality, folder in (("visible", "RGB"), ("nir", "NI"), ("tir", "TI")):
        samples = by_modality[modality]
        assert names(samples) == want  # one name per aligned capture in RGB/, NI/ and TI/
        assert {Path(s.path).parent.name for s in samples} == {folder}
        assert [(s.person_id, s.camera) for s in samples] == [(1, 1), (1, 2), (2, 1)]  # 6 digits, cam<k>


def test_aligned_twin_rule_is_part_of_the_multimodal_camera_rule(tmp_path):
    # the multi-modality papers score fused triplets, query = gallery = test/, skipping same id and same
    # physical camera; carried to a cross-modal pair that rule also drops the other same-camera captures
    root = tmp_path / "RGBNT201"
    captures = ["000001_cam1_01", "000001_cam1_02", "000001_cam2_03", "000002_cam1_04"]
    for split in ("train_171", "test"):
        for folder in ("RGB", "NI", "TI"):
            (root / split / folder).mkdir(parents=True)
            for c in captures:
                (root / split / folder / f"{c}.jpg").touch()
    protocol = load(root, exclude_aligned_twin=True).protocols["visible-to-nir"]
    query, gallery = protocol.query, protocol.gallery(0)
    twin = ignore_mask(protocol.exclusion, query, gallery)
    market = ignore_mask("same-id-same-camera", query, gallery)
    assert twin.tolist() == [[i == j for j in range(4)] for i in range(4)]  # each query's own capture
    assert market[0].tolist() == [True, True, False, False]  # 000001_cam1_01 also skips 000001_cam1_02
    assert (market | ~twin).all() and market.sum() > twin.sum()


def test_ties_rank_by_gallery_order_not_by_sklearn_ap():
    # IMSL's mean_ap calls sklearn's average_precision_score, which scores tied distances as one
    # threshold (here 1/2); reidkit ranks ties by gallery position (stable) and gets 1, or 1/2 reversed
    assert rank_metrics([[0.5, 0.5]], [1], [1, 2])["mAP"] == 1.0
    assert rank_metrics([[0.5, 0.5]], [1], [2, 1])["mAP"] == 0.5
    assert rank_metrics([[0.5, 0.4]], [1], [1, 2])["mAP"] == 0.5  # no tie: every definition agrees
