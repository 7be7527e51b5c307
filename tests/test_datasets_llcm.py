"""LLCM: a tiny fake copy of the released layout; the lists and metrics of the authors' protocol.

The expected lists are built here from the rules of the authors' code (github.com/ZYK100/LLCM, DEEN's
``process_query_llcm``, ``process_gallery_llcm`` and ``eval_llcm``), as documented in
``reidkit.data.datasets.llcm``: test ids ascending, official cameras in order, file names sorted; one seeded
``random.choice`` per (id, camera) folder; same id *and* camera skipped; identity-deduplicated CMC.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from reidkit.config import DataConfig
from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.llcm import LLCM, TEST_CAMERAS
from reidkit.evaluation import evaluate

FOLDER = {"visible": "test_vis", "infrared": "test_nir"}


def write_llcm(root: Path, test: dict[str, dict[tuple[int, int], int]], test_ids=(1, 2),
               names=lambda folder, pid, cam, i: f"{folder}_{pid}_{cam}_{i}.jpg") -> Path:
    """``test[folder][(pid, cam)] = n`` images; training: 2 ids x 2 images per modality."""
    (root / "idx").mkdir(parents=True)
    for folder, groups in test.items():
        for (pid, cam), n in groups.items():
            d = root / folder / f"cam{cam}" / f"{pid:04d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (d / names(folder, pid, cam, i)).touch()
    for listing, folder in (("train_vis.txt", "vis"), ("train_nir.txt", "nir")):
        lines = []
        for pid in (7, 8):
            d = root / folder / f"cam{pid - 5}" / f"{pid:04d}"
            d.mkdir(parents=True)
            for i in range(2):
                (d / f"{i}.jpg").touch()
                lines.append(f"{folder}/cam{pid - 5}/{pid:04d}/{i}.jpg {pid - 7}")
        (root / "idx" / listing).write_text("\n".join(lines) + "\n")
    (root / "idx" / "test_id.txt").write_text(",".join(map(str, test_ids)))
    return root


def load(root: Path) -> LLCM:
    return LLCM.from_config(DataConfig(dataset="llcm", root=str(root)))


def folder_files(root: Path, modality: str, pid: int, cam: int) -> list[str]:
    d = root / FOLDER[modality] / f"cam{cam}" / f"{pid:04d}"
    return sorted(str(p) for p in d.iterdir() if p.suffix == ".jpg") if d.is_dir() else []


def expected_query(root: Path, modality: str, ids) -> list[tuple[str, int, int]]:
    """Every image of the modality: ids ascending, official cameras in order, names sorted."""
    return [(path, pid, cam) for pid in sorted(ids) for cam in TEST_CAMERAS[modality]
            for path in folder_files(root, modality, pid, cam)]


def expected_gallery(root: Path, modality: str, ids, trial: int) -> list[str]:
    """``random.seed(trial)``, then one ``random.choice`` per non-empty (id, camera) folder, in order."""
    random.seed(trial)
    return [random.choice(files) for pid in sorted(ids) for cam in TEST_CAMERAS[modality]
            if (files := folder_files(root, modality, pid, cam))]


LAYOUT = {"test_vis": {(1, 1): 3, (1, 2): 2, (2, 1): 1, (2, 3): 4, (3, 1): 2},
          "test_nir": {(1, 1): 1, (2, 2): 2}}


def test_loading_and_protocols(tmp_path):
    data = load(write_llcm(tmp_path / "LLCM", LAYOUT))
    report = data.check_report()
    assert report["train"] == {"infrared": {"images": 4, "ids": 2}, "visible": {"images": 4, "ids": 2}}
    assert {s.camera for s in data.train} == {2, 3}  # parsed from the listed paths
    assert report["protocols"] == {"visible-to-infrared": {"query": 10, "gallery": 2, "trials": 10},
                                   "infrared-to-visible": {"query": 3, "gallery": 4, "trials": 10}}
    protocol = data.protocols["infrared-to-visible"]
    assert protocol.exclusion == "same-id-same-camera" and protocol.dedup_cmc
    assert 3 not in {s.person_id for s in protocol.gallery_pool}  # not a test id


def test_lists_of_both_directions_follow_the_official_rules(tmp_path):
    # ids listed out of order; names whose string order is not their numeric order ("10" < "9")
    layout = {"test_vis": {(12, 9): 3, (12, 1): 2, (3, 4): 12, (3, 2): 1, (5, 5): 2},
              "test_nir": {(12, 8): 2, (12, 1): 3, (3, 9): 11, (5, 2): 1, (40, 1): 2}}
    root = write_llcm(tmp_path / "LLCM", layout, test_ids=(12, 3, 5),
                      names=lambda folder, pid, cam, i: f"{(i * 7) % 13}.jpg")
    data = load(root)
    ids = (12, 3, 5)
    for query_modality, gallery_modality in (("visible", "infrared"), ("infrared", "visible")):
        protocol = data.protocols[f"{query_modality}-to-{gallery_modality}"]
        # all images of the query modality are queries (DEEN's test.py swaps the roles for "VIS to IR";
        # reidkit keeps the protocol as described)
        assert [(s.path, s.person_id, s.camera) for s in protocol.query] == expected_query(
            root, query_modality, ids)
        assert {s.modality for s in protocol.query} == {query_modality}
        for trial in range(10):
            gallery = protocol.gallery(trial)
            assert [s.path for s in gallery] == expected_gallery(root, gallery_modality, ids, trial)
            assert len({(s.person_id, s.camera) for s in gallery}) == len(gallery)  # one per id, camera
    assert 40 not in {s.person_id for p in data.protocols.values() for s in p.gallery_pool}


def test_cameras_outside_the_official_lists_are_skipped_and_reported(tmp_path):
    layout = {"test_vis": {(1, 1): 1, (1, 3): 1, (1, 10): 1}, "test_nir": {(1, 1): 1, (1, 3): 2}}
    data = load(write_llcm(tmp_path / "LLCM", layout, test_ids=(1,)))
    assert [s.camera for s in data.protocols["infrared-to-visible"].query] == [1]  # no infrared cam3
    assert [s.camera for s in data.protocols["visible-to-infrared"].query] == [1, 3]  # no cam10
    assert any("test_nir/: cam3 skipped" in n for n in data.notes)
    assert any("test_vis/: cam10 skipped" in n for n in data.notes)


def test_repeated_ids_empty_folders_and_other_files(tmp_path):
    layout = {"test_vis": {(1, 1): 2, (2, 1): 1}, "test_nir": {(1, 2): 1, (2, 2): 1}}
    root = write_llcm(tmp_path / "LLCM", layout, test_ids=(2, 1, 2))
    (root / "test_vis" / "cam4" / "0001").mkdir(parents=True)  # an empty folder: no gallery pick
    (root / "test_vis" / "cam1" / "0001" / "Thumbs.db").touch()  # not an image
    data = load(root)
    assert any("repeats 1 id(s), e.g. 2" in n for n in data.notes)
    protocol = data.protocols["infrared-to-visible"]
    assert [s.person_id for s in protocol.query] == [1, 2]  # each id once
    for trial in range(10):
        assert [s.path for s in protocol.gallery(trial)] == expected_gallery(root, "visible", (1, 2), trial)


def test_wrong_root(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="test_vis/cam<k>"):
        load(tmp_path / "x")
    root = write_llcm(tmp_path / "LLCM", LAYOUT)
    (root / "idx" / "test_id.txt").unlink()
    with pytest.raises(DatasetError, match="test_id.txt"):
        load(root)


def features_from_similarities(sims: dict[tuple[int, int], dict[tuple[int, int], float]]):
    """Query (infrared) features one-hot, gallery (visible) features the wanted similarities."""
    queries = list(sims)

    def features(samples):
        rows = []
        for s in samples:
            key = (s.person_id, s.camera)
            rows.append([float(key == q) for q in queries] if s.modality == "infrared"
                        else [sims[q][key] for q in queries])
        return torch.tensor(rows)
    return features


def test_fixed_features_score_hand_computed_numbers(tmp_path):
    layout = {"test_vis": {(1, 1): 1, (1, 2): 1, (2, 1): 1}, "test_nir": {(1, 1): 1, (2, 2): 1}}
    data = load(write_llcm(tmp_path / "LLCM", layout))
    sims = {(1, 1): {(1, 1): 0.99, (2, 1): 0.9, (1, 2): 0.5},   # query id 1 @ cam1
            (2, 2): {(1, 1): 0.9, (1, 2): 0.8, (2, 1): 0.7}}    # query id 2 @ cam2
    out = evaluate(features_from_similarities(sims), data.protocols["infrared-to-visible"])
    # query 1@cam1 skips visible 1@cam1 (same id, same camera): (2,1), (1,2) -> rank 2, AP 1/2, INP 1/2
    # query 2@cam2: ids 1, 1, 2 -> deduplicated rank 2; AP 1/3, INP 1/3
    assert out["rank1"] == 0.0 and out["cmc"][1] == 1.0
    assert out["mAP"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert out["mINP"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert out["trials"] == 10 and out["sampler"] == "seeded"


def test_eval_llcm_rules_by_hand(tmp_path):
    """Same id and camera skipped, not same id alone; dedup CMC but full-list mAP and mINP; a query
    without a true match left is not counted (neither in CMC nor in mAP)."""
    layout = {"test_vis": {(1, 1): 1, (1, 2): 1, (2, 1): 1, (2, 2): 1, (3, 2): 1},
              "test_nir": {(1, 1): 1, (2, 4): 1, (3, 2): 1}}
    data = load(write_llcm(tmp_path / "LLCM", layout, test_ids=(1, 2, 3)))
    sims = {(1, 1): {(1, 1): 0.99, (2, 1): 0.9, (2, 2): 0.8, (1, 2): 0.7, (3, 2): 0.6},
            (2, 4): {(1, 1): 0.9, (3, 2): 0.8, (2, 1): 0.5, (2, 2): 0.4, (1, 2): 0.3},
            (3, 2): {(1, 1): 0.1, (2, 1): 0.2, (2, 2): 0.3, (1, 2): 0.4, (3, 2): 0.9}}
    out = evaluate(features_from_similarities(sims), data.protocols["infrared-to-visible"])
    # 1@cam1 skips 1@cam1: ids 2, 2, 1, 3 -> plain rank 3 (AP 1/3, INP 1/3), deduplicated rank 2
    # 2@cam4 skips nothing: ids 1, 3, 2, 2, 1 -> matches at 3 and 4 (AP (1/3 + 2/4) / 2, INP 2/4),
    #   deduplicated rank 3
    # 3@cam2: its only visible image is 3@cam2, skipped -> not a valid query
    assert out["cmc"][:3] == pytest.approx([0.0, 0.5, 1.0])
    assert out["mAP"] == pytest.approx((1 / 3 + (1 / 3 + 2 / 4) / 2) / 2)
    assert out["mINP"] == pytest.approx((1 / 3 + 2 / 4) / 2)
