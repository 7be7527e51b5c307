"""RegDB: a tiny fake copy of the official layout; splits, directions and hand-computed scores."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidkit.config import DataConfig
from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.regdb import RegDB
from reidkit.evaluation import evaluate

FOLDER = {"visible": "Visible", "thermal": "Thermal"}


def write_regdb(root: Path, trials=(1, 2), per_id: int = 2) -> Path:
    """Identities 0-3; split t trains on {t-1, t} mod 4 (labels = folder ids), tests on the other two."""
    for modality, folder in FOLDER.items():
        for pid in range(4):
            d = root / folder / str(pid)
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_id):
                (d / f"{modality[0]}_{pid}_{i}.bmp").touch()
    (root / "idx").mkdir(parents=True, exist_ok=True)
    for t in trials:
        train_ids = {(t - 1) % 4, t % 4}
        for modality, folder in FOLDER.items():
            for split, ids in (("train", sorted(train_ids)), ("test", sorted(set(range(4)) - train_ids))):
                lines = [f"{folder}/{pid}/{modality[0]}_{pid}_{i}.bmp {pid}"
                         for pid in ids for i in range(per_id)]
                (root / "idx" / f"{split}_{modality}_{t}.txt").write_text("\n".join(lines) + "\n")
    return root


def load(root: Path, **kw) -> RegDB:
    return RegDB.from_config(DataConfig(dataset="regdb", root=str(root)), RegDB.Config(**kw))


def test_trial_picks_the_split(tmp_path):
    root = write_regdb(tmp_path / "RegDB")
    one, two = load(root, trial=1), load(root, trial=2)
    assert {s.person_id for s in one.train} == {0, 1} and {s.person_id for s in two.train} == {1, 2}
    assert one.check_report()["train"] == {"thermal": {"images": 4, "ids": 2},
                                           "visible": {"images": 4, "ids": 2}}
    assert set(one.protocols) == {"visible-to-thermal", "thermal-to-visible"}
    v2t, t2v = one.protocols["visible-to-thermal"], one.protocols["thermal-to-visible"]
    assert {s.modality for s in v2t.query} == {"visible"}
    assert {s.modality for s in v2t.gallery(0)} == {"thermal"}
    assert {s.modality for s in t2v.query} == {"thermal"}
    assert {s.modality for s in t2v.gallery(0)} == {"visible"}
    assert v2t.exclusion == "none" and not v2t.dedup_cmc and len(v2t.trials) == 1
    assert {s.camera for s in one.train} == {1, 2}
    assert any("3, 4, 5" in n for n in one.notes)  # split files 3-10 are absent from this fake


def test_wrong_root_and_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="Visible/, Thermal/ and idx/"):
        (tmp_path / "x").mkdir()
        load(tmp_path / "x")
    root = write_regdb(tmp_path / "RegDB")
    with pytest.raises(DatasetError, match="train_visible_3.txt"):
        load(root, trial=3)
    (root / "Thermal" / "3" / "t_3_0.bmp").unlink()
    with pytest.raises(DatasetError, match="not under"):
        load(root, trial=1)


def test_fixed_features_score_hand_computed_numbers(tmp_path):
    root = write_regdb(tmp_path / "RegDB", trials=(1,))  # test ids 2 and 3, two images each
    # 1-D features: visible 2 -> 1.0, visible 3 -> -1.0; thermal images of id 2 -> 0.9 and -0.5,
    # thermal images of id 3 -> 0.2 and 0.1 (similarity = product)
    value = {("v", 2, 0): 1.0, ("v", 2, 1): 1.0, ("v", 3, 0): -1.0, ("v", 3, 1): -1.0,
             ("t", 2, 0): 0.9, ("t", 2, 1): -0.5, ("t", 3, 0): 0.2, ("t", 3, 1): 0.1}

    def features(samples):
        keys = [Path(s.path).stem.split("_") for s in samples]  # "<v|t>_<pid>_<i>"
        return torch.tensor([[value[(m, int(pid), int(i))]] for m, pid, i in keys])

    out = evaluate(features, load(root).protocols["visible-to-thermal"])
    # id-2 queries rank: t2_0 (0.9), t3_0, t3_1, t2_1 -> matches at 1 and 4: AP (1 + 2/4)/2, INP 2/4
    # id-3 queries rank: t2_1 (0.5), t3_1 (-0.1), t3_0 (-0.2), t2_0 -> matches at 2, 3:
    # AP (1/2 + 2/3)/2, INP 2/3
    assert out["rank1"] == pytest.approx(0.5) and out["cmc"][1] == 1.0
    assert out["mAP"] == pytest.approx(((1 + 2 / 4) / 2 + (1 / 2 + 2 / 3) / 2) / 2)
    assert out["mINP"] == pytest.approx((2 / 4 + 2 / 3) / 2)
    assert out["split"] == 1 and out["trials"] == 1
