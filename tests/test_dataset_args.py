"""``dataset_args``: each dataset's own options, validated like ``method_args``; the old ``data.*`` keys still
read for one release with a one-line deprecation warning."""
from __future__ import annotations

import logging

import pytest
import torch
import yaml

from reidkit.cli import main
from reidkit.config import ConfigError, DataConfig, resolve, to_dict
from reidkit.data.datasets.base import DatasetError, NoOptions
from reidkit.data.datasets.generic import GenericDataset
from reidkit.dataset_args import MOVED_DATA_KEYS
from reidkit.engine.run import load_dataset, restore_checkpoint
from reidkit.testing import make_tiny_dataset

OLD_SAVED_DATA = {"preset": "small", "trial": 1, "gallery_sampler": "auto", "exclude_aligned_twin": False}


def deprecations(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


@pytest.fixture(autouse=True)
def reidkit_log_reaches_caplog(monkeypatch):
    """The CLI's own log set-up (a console handler, no propagation) would keep the records from caplog."""
    monkeypatch.setattr("reidkit.cli._setup_logging", lambda verbose: None)
    monkeypatch.setattr(logging.getLogger("reidkit"), "propagate", True)


# ------------------------------------------------------------------------------------------------- validation
def test_each_dataset_validates_its_own_options():
    assert resolve("toy").dataset_args.preset == "small"  # the default dataset is synthetic
    regdb = resolve("toy", overrides=["data.dataset=regdb", "dataset_args.trial=3"])
    assert regdb.dataset_args.trial == 3 and not hasattr(regdb.data, "trial")
    sysu = resolve("toy", overrides=["data.dataset=sysu_mm01", "dataset_args.gallery_sampler=seeded"])
    assert sysu.dataset_args.gallery_sampler == "seeded"
    assert resolve("toy", overrides=["data.dataset=llcm"]).dataset_args == NoOptions()


@pytest.mark.parametrize("overrides, message", [
    (["data.dataset=regdb", "dataset_args.trail=3"], r"unknown config key 'dataset_args.trail'; did you mean 'trial'"),
    (["data.dataset=regdb", "dataset_args.trial=11"], r"dataset_args.trial: 11 is out of range \(must be <= 10\)"),
    (["data.dataset=regdb", "dataset_args.trial=three"], r"dataset_args.trial: expected int, got str 'three'"),
    (["dataset_args.preset=standrd"], r"dataset_args.preset: 'standrd' is not one of .*did you mean 'standard'"),
    (["data.dataset=sysu_mm01", "dataset_args.preset=tiny"], r"unknown config key 'dataset_args.preset'"),
    (["data.dataset=llcm", "dataset_args.trial=2"], r"dataset_args: dataset 'llcm' takes no options, got \['trial'\]"),
    (["data.dataset=generic", "data.colour_modality=rgb"], r"did you mean 'dataset_args.colour_modality'"),
    (["dataset_args=3"], r"dataset_args: expected a mapping"),
])
def test_option_mistakes_say_what_was_expected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve("toy", overrides=overrides)


def test_options_are_shown_with_their_help(capsys):
    assert main(["config", "--method", "chcr", "--comments", "--set", "data.dataset=regdb"]) == 0
    text = capsys.readouterr().out
    assert "dataset_args:\n  trial: 1  # which of the 10 official splits" in text
    assert main(["config", "--method", "chcr", "--comments", "--set", "data.dataset=llcm"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["dataset_args"] == {}


# -------------------------------------------------------------------------------------------- old data keys
def test_an_old_data_key_moves_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="reidkit"):
        cfg = resolve("toy", overrides=["data.preset=tiny"])
    assert cfg.dataset_args.preset == "tiny"
    assert deprecations(caplog) == [("config key data.preset is deprecated: use dataset_args.preset (the old key "
                                     "goes in the next release)")]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="reidkit"):
        assert resolve("toy", overrides=["data.dataset=regdb", "data.trial=4"]).dataset_args.trial == 4
    assert deprecations(caplog) == [("config key data.trial is deprecated: use dataset_args.trial (the old key "
                                     "goes in the next release)")]


def test_old_keys_keep_their_precedence(tmp_path):
    old_file = tmp_path / "old.yaml"
    old_file.write_text("data:\n  dataset: regdb\n  trial: 5\n")
    defaults = {"dataset_args": {"trial": 2}}
    assert resolve("toy", config_file=old_file, method_defaults=defaults).dataset_args.trial == 5  # file wins
    assert resolve("toy", config_file=old_file, overrides=["dataset_args.trial=7"]).dataset_args.trial == 7
    both = tmp_path / "both.yaml"
    both.write_text("data:\n  dataset: regdb\n  trial: 5\ndataset_args:\n  trial: 6\n")
    assert resolve("toy", config_file=both).dataset_args.trial == 6  # in one file, the new key wins


def test_a_saved_config_from_before_the_move_resolves(caplog, tmp_path):
    """Every saved config holds all four old keys, whatever its dataset: the ones the dataset takes move
    (one warning each); the others are dropped quietly when they hold the old default, as before."""
    old = {"data": {"dataset": "generic", "root": str(tmp_path), **OLD_SAVED_DATA}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(old))
    with caplog.at_level(logging.WARNING, logger="reidkit"):
        cfg = resolve("toy", config_file=path)
    assert cfg.dataset_args == GenericDataset.Config() and deprecations(caplog) == []
    assert set(MOVED_DATA_KEYS) == set(OLD_SAVED_DATA)
    path.write_text(yaml.safe_dump({"data": {**old["data"], "dataset": "sysu_mm01", "trial": 3}}))
    with caplog.at_level(logging.WARNING, logger="reidkit"):
        assert resolve("toy", config_file=path).dataset_args.gallery_sampler == "auto"
    assert sorted(m.split(":")[0] for m in deprecations(caplog)) == [
        "config key data.gallery_sampler is deprecated",
        "config key data.trial is deprecated (now dataset_args.trial) and dataset 'sysu_mm01' has no such option"]


def test_an_old_checkpoint_config_is_restored(with_example, tmp_path, caplog):
    from reidkit.engine.checkpoint import load_checkpoint

    root = make_tiny_dataset(tmp_path / "data", ids=4, per_id=2, test_ids=2)
    out = tmp_path / "run"
    tiny = ["--set", "data.dataset=synthetic", "--set", f"data.root={root}", "--set", "data.height=32",
            "--set", "data.width=16", "--set", "data.batch_size=4", "--set", "data.instances=2",
            "--set", "data.workers=0", "--set", "optim.epochs=1", "--set", "optim.iterations=1",
            "--set", "dataset_args.preset=tiny"]
    assert main(["run", "--method", "kmeans-proxy", *tiny, "--output", str(out)]) == 0
    ckpt = out / "checkpoints" / "last.pt"
    state = load_checkpoint(ckpt)
    config = state["config"]
    assert config["dataset_args"] == {"colour_modality": "auto", "preset": "tiny", "world_seed": 0}
    config["data"].update({**OLD_SAVED_DATA, "preset": config.pop("dataset_args")["preset"]})  # as saved before
    torch.save(state, ckpt)
    with caplog.at_level(logging.WARNING, logger="reidkit"):
        restored = restore_checkpoint(ckpt, device="cpu")
    assert restored.cfg.dataset_args.preset == "tiny" and restored.epoch == 0
    assert [m.split(":")[0] for m in deprecations(caplog)] == ["config key data.preset is deprecated"]


# ------------------------------------------------------------------------------------------ the data commands
def test_data_commands_place_bare_settings(tmp_path, capsys, caplog):
    import json

    from reidkit.data.datasets.regdb import RegDB

    root = RegDB.write_example(tmp_path)
    for setting in ("trial=1", "dataset_args.trial=1"):
        assert main(["data", "check", "regdb", str(root), "--json", "--set", setting]) == 0
        notes = json.loads(capsys.readouterr().out)["notes"]
        assert "split 1 of 10" in json.dumps(notes) and "modality roles: visible = colour, thermal = infrared" in notes
    with caplog.at_level(logging.WARNING, logger="reidkit"):
        assert main(["data", "check", "regdb", str(root), "--json", "--set", "data.trial=1"]) == 0
    assert deprecations(caplog)
    assert main(["data", "check", "regdb", str(root), "--set", "trial=12"]) == 2
    assert "dataset_args.trial: 12 is out of range" in capsys.readouterr().err


# -------------------------------------------------------------------------------------- the generic layout
def test_the_generic_layout_infers_the_colour_role_or_takes_it(tmp_path):
    rgb = make_tiny_dataset(tmp_path / "rgb", modalities=("rgb", "thermal"), ids=2, per_id=1, test_ids=1)
    assert GenericDataset.from_config(DataConfig(dataset="generic", root=str(rgb))).roles == {
        "rgb": "colour", "thermal": "infrared"}
    odd = make_tiny_dataset(tmp_path / "odd", modalities=("cam_a", "cam_b"), ids=2, per_id=1, test_ids=1)

    def load(*overrides):
        return load_dataset(resolve("toy", overrides=["data.dataset=generic", f"data.root={odd}", *overrides]))

    assert load().colour_modality is None
    assert load("dataset_args.colour_modality=cam_b").roles == {"cam_a": "other", "cam_b": "colour"}
    assert load("dataset_args.colour_modality=none").colour_modality is None
    with pytest.raises(DatasetError, match="colour_modality='cam_c' names no modality folder"):
        load("dataset_args.colour_modality=cam_c")
    assert load_dataset(resolve("toy", overrides=["data.dataset=generic", f"data.root={rgb}",
                                                  "dataset_args.colour_modality=none"])).colour_modality is None
    assert to_dict(resolve("toy", overrides=["data.dataset=generic"]).dataset_args) == {"colour_modality": "auto"}
