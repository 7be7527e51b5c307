"""SYSU-MM01: a tiny fake copy of the official layout; counts, samplers, rules and hand-computed scores."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

from reidkit.config import DataConfig
from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.sysu_mm01 import SYSUMM01
from reidkit.evaluation import evaluate

# images per (person, camera) of the test ids; train ids 1-3 get 2 images in every camera
TEST_IMAGES = {
    4: {1: 3, 2: 2, 3: 2, 5: 1, 6: 1},
    5: {1: 2, 3: 1, 4: 12, 6: 2},
    6: {2: 1, 3: 1, 4: 1, 5: 1},
}


def write_sysu(root: Path, images: dict[int, dict[int, int]], train_ids=(1, 2), val_ids=(3,)) -> Path:
    for pid, cams in images.items():
        for cam, n in cams.items():
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(1, n + 1):
                (folder / f"{i:04d}.jpg").touch()
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir(exist_ok=True)
    (root / "exp").mkdir(exist_ok=True)
    test_ids = [p for p in images if p not in train_ids and p not in val_ids]
    for name, ids in (("train_id", train_ids), ("val_id", val_ids), ("test_id", test_ids)):
        (root / "exp" / f"{name}.txt").write_text(",".join(str(i) for i in ids) + "\n")
    return root


@pytest.fixture()
def sysu(tmp_path) -> Path:
    images = {pid: {cam: 2 for cam in range(1, 7)} for pid in (1, 2, 3)} | TEST_IMAGES
    return write_sysu(tmp_path / "SYSU-MM01", images)


def load(root: Path, **kw) -> SYSUMM01:
    return SYSUMM01.from_config(DataConfig(dataset="sysu_mm01", root=str(root)), SYSUMM01.Config(**kw))


def test_counts_modalities_and_cameras(sysu):
    data = load(sysu)
    report = data.check_report()
    assert report["train"] == {"infrared": {"images": 12, "ids": 3}, "visible": {"images": 24, "ids": 3}}
    assert report["protocols"] == {
        "all-search": {"query": 7, "gallery": 8, "trials": 10},
        "all-search-multishot": {"query": 7, "gallery": 21, "trials": 10},
        "indoor-search": {"query": 7, "gallery": 4, "trials": 10},
        "indoor-search-multishot": {"query": 7, "gallery": 8, "trials": 10},  # 3+2, 2, 1
    }
    assert {s.camera for s in data.train if s.modality == "infrared"} == {3, 6}
    assert {s.camera for s in data.train if s.modality == "visible"} == {1, 2, 4, 5}
    protocol = data.protocols["all-search"]
    assert protocol.exclusion == "sysu-location" and protocol.dedup_cmc
    assert protocol.info == {"sampler": "seeded", "shots": 1}
    assert all(s.modality == "infrared" for s in protocol.query)
    assert any("seeded" in n for n in data.notes)


def test_parent_folder_is_accepted(sysu):
    assert load(sysu.parent).root == str(sysu)


def test_seeded_sampler_is_agws_random_choice(sysu):
    data = load(sysu, gallery_sampler="seeded")
    for trial in (0, 3, 9):
        random.seed(trial)  # AGW's process_gallery_sysu, written out independently
        want = []
        for pid in ("0004", "0005", "0006"):
            for cam in ("cam1", "cam2", "cam4", "cam5"):
                folder = sysu / cam / pid
                if folder.is_dir():
                    want.append(random.choice(sorted(str(folder) + "/" + f for f in os.listdir(folder))))
        assert [s.path for s in data.protocols["all-search"].gallery(trial)] == want
    multishot = data.protocols["all-search-multishot"].gallery(0)
    per_group = {}
    for s in multishot:
        per_group[(s.person_id, s.camera)] = per_group.get((s.person_id, s.camera), 0) + 1
    assert per_group[(5, 4)] == 10 and per_group[(4, 1)] == 3


def write_permutations(root: Path, perms: dict[tuple[int, int], np.ndarray], persons: int = 6) -> None:
    outer = np.empty((6, 1), dtype=object)
    for cam in range(1, 7):
        inner = np.empty((persons, 1), dtype=object)
        for pid in range(1, persons + 1):
            inner[pid - 1, 0] = perms.get((cam, pid), np.zeros((0, 0)))
        outer[cam - 1, 0] = inner
    savemat(str(root / "exp" / "rand_perm_cam.mat"), {"rand_perm_cam": outer})


def test_official_permutations_pick_the_gallery(sysu):
    perms = {}
    for pid, cams in TEST_IMAGES.items():
        for cam, n in cams.items():
            # trial t picks image (t mod n) + 1 first; rows are permutations of 1..n
            perms[(cam, pid)] = np.array([np.roll(np.arange(1, n + 1), -(t % n)) for t in range(10)], float)
    write_permutations(sysu, perms)
    data = load(sysu)
    protocol = data.protocols["all-search"]
    assert protocol.info["sampler"] == "official" and any("official" in n for n in data.notes)
    trial2 = protocol.gallery(2)
    # camera by camera, as the MATLAB code assembles the gallery
    assert [(s.camera, s.person_id) for s in trial2] == [(1, 4), (1, 5), (2, 4), (2, 6), (4, 5), (4, 6),
                                                        (5, 4), (5, 6)]
    names = {(s.camera, s.person_id): Path(s.path).name for s in trial2}
    assert names[(1, 4)] == "0003.jpg" and names[(4, 5)] == "0003.jpg" and names[(2, 4)] == "0001.jpg"
    multi = data.protocols["all-search-multishot"].gallery(0)
    assert sum(1 for s in multi if (s.camera, s.person_id) == (4, 5)) == 10
    assert load(sysu, gallery_sampler="seeded").protocols["all-search"].info["sampler"] == "seeded"


def test_official_sampler_demands_the_file(sysu):
    with pytest.raises(DatasetError, match="rand_perm_cam.mat"):
        load(sysu, gallery_sampler="official")


def test_wrong_roots_say_what_was_expected(tmp_path, sysu):
    with pytest.raises(DatasetError, match="does not exist"):
        load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="cam1..cam6"):
        load(tmp_path / "empty")
    (sysu / "exp" / "test_id.txt").unlink()
    with pytest.raises(DatasetError, match="test_id.txt"):
        load(sysu)


def test_fixed_features_score_hand_computed_numbers(tmp_path):
    """Two test ids; the camera-3 rule and the identity de-duplication both change the result."""
    root = write_sysu(tmp_path / "mini", {1: {1: 1, 3: 1}, 2: {2: 1, 4: 1, 6: 1}, 9: {1: 1, 3: 1}},
                      train_ids=(9,), val_ids=())
    (root / "cam2" / "0001").mkdir()
    (root / "cam2" / "0001" / "0001.jpg").touch()
    # similarity of the two queries (pid 1 @ cam3, pid 2 @ cam6) to each gallery (pid, camera)
    sims = {(1, 3): {(1, 1): 0.5, (1, 2): 0.95, (2, 2): 0.99, (2, 4): 0.9},
            (2, 6): {(1, 1): 0.9, (1, 2): 0.8, (2, 2): 0.7, (2, 4): 0.1}}
    queries = list(sims)

    def features(samples):
        rows = []
        for s in samples:
            key = (s.person_id, s.camera)
            is_query = key in sims
            rows.append([float(key == q) if is_query else sims[q][key] for q in queries])
        return torch.tensor(rows)

    data = load(root)
    out = evaluate(features, data.protocols["all-search"])
    # cam3 query: cam2 skipped -> (2,4) 0.9, (1,1) 0.5 -> rank 2, AP 1/2, INP 1/2
    # cam6 query: ids 1, 1, 2, 2 -> plain rank 3 but deduplicated rank 2; AP (1/3 + 2/4) / 2, INP 2/4
    assert out["rank1"] == 0.0 and out["cmc"][1] == 1.0
    assert out["mAP"] == pytest.approx((1 / 2 + (1 / 3 + 2 / 4) / 2) / 2)
    assert out["mINP"] == pytest.approx(1 / 2)
    assert out["trials"] == 10 and out["sampler"] == "seeded"
    indoor = evaluate(features, data.protocols["indoor-search"], max_trials=2)
    # cam3 query keeps only (1,1): rank 1; cam6 query: (1,1), (1,2), (2,2): dedup rank 2, AP 1/3
    assert indoor["rank1"] == 0.5 and indoor["cmc"][1] == 1.0
    assert indoor["mAP"] == pytest.approx((1 + 1 / 3) / 2)
