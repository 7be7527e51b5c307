"""LLCM: a tiny fake copy of the released layout; directions, DEEN's sampler, exclusion and dedup."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from reidkit.config import DataConfig
from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.llcm import LLCM
from reidkit.evaluation import evaluate


def write_llcm(root: Path, test: dict[str, dict[tuple[int, int], int]], test_ids=(1, 2)) -> Path:
    """``test[folder][(pid, cam)] = n`` images; training: 2 ids x 2 images per modality."""
    (root / "idx").mkdir(parents=True)
    for folder, groups in test.items():
        for (pid, cam), n in groups.items():
            d = root / folder / f"cam{cam}" / f"{pid:04d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (d / f"{folder}_{pid}_{cam}_{i}.jpg").touch()
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


def test_gallery_is_deens_seeded_choice(tmp_path):
    root = write_llcm(tmp_path / "LLCM", LAYOUT)
    data = load(root)
    for trial in range(10):
        random.seed(trial)  # DEEN's process_gallery_llcm, written out independently
        want = []
        for pid in ("0001", "0002"):
            for cam in ("cam1", "cam2", "cam3"):
                d = root / "test_vis" / cam / pid
                if d.is_dir():
                    want.append(random.choice(sorted(str(d) + "/" + f for f in os.listdir(d))))
        assert [s.path for s in data.protocols["infrared-to-visible"].gallery(trial)] == want


def test_wrong_root(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="test_vis/cam<k>"):
        load(tmp_path / "x")
    root = write_llcm(tmp_path / "LLCM", LAYOUT)
    (root / "idx" / "test_id.txt").unlink()
    with pytest.raises(DatasetError, match="test_id.txt"):
        load(root)


def test_fixed_features_score_hand_computed_numbers(tmp_path):
    layout = {"test_vis": {(1, 1): 1, (1, 2): 1, (2, 1): 1}, "test_nir": {(1, 1): 1, (2, 2): 1}}
    data = load(write_llcm(tmp_path / "LLCM", layout))
    sims = {(1, 1): {(1, 1): 0.99, (2, 1): 0.9, (1, 2): 0.5},   # query id 1 @ cam1
            (2, 2): {(1, 1): 0.9, (1, 2): 0.8, (2, 1): 0.7}}    # query id 2 @ cam2
    queries = list(sims)

    def features(samples):
        rows = []
        for s in samples:
            key = (s.person_id, s.camera)
            rows.append([float(key == q) for q in queries] if s.modality == "infrared"
                        else [sims[q][key] for q in queries])
        return torch.tensor(rows)

    out = evaluate(features, data.protocols["infrared-to-visible"])
    # query 1@cam1 skips visible 1@cam1 (same id, same camera): (2,1), (1,2) -> rank 2, AP 1/2, INP 1/2
    # query 2@cam2: ids 1, 1, 2 -> deduplicated rank 2; AP 1/3, INP 1/3
    assert out["rank1"] == 0.0 and out["cmc"][1] == 1.0
    assert out["mAP"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert out["mINP"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert out["trials"] == 10 and out["sampler"] == "seeded"
