"""The CLI in-process: user errors are one line and exit 2; runs, eval, list, config, data check work."""
from __future__ import annotations

import json

import pytest

from reidkit.cli import main

TINY = ["--set", "data.dataset=generic", "--set", "data.height=32", "--set", "data.width=16",
        "--set", "data.batch_size=8", "--set", "data.instances=2", "--set", "data.workers=0",
        "--set", "optim.epochs=1", "--set", "optim.iterations=2"]


def test_unknown_method_is_one_line_and_exit_2(capsys):
    assert main(["run", "--method", "no-such-method"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: method 'no-such-method' is not installed") and "\n" not in err


def test_bad_key_suggests(with_example, capsys):
    assert main(["config", "--method", "kmeans-proxy", "--set", "optim.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_debug_shows_the_traceback():
    with pytest.raises(Exception, match="not installed"):
        main(["--debug", "run", "--method", "no-such-method"])


def test_config_prints_resolved_yaml(with_example, capsys):
    import yaml

    assert main(["config", "--method", "kmeans-proxy", "--set", "method_args.clusters=7"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["method"] == "kmeans-proxy" and doc["method_args"]["clusters"] == 7
    assert set(doc) >= {"seed", "output", "data", "model", "optim", "eval", "method_args"}


def test_config_comments_keep_the_yaml(capsys):
    import yaml

    assert main(["config", "--method", "dc-baseline"]) == 0
    plain = capsys.readouterr().out
    assert main(["config", "--method", "dc-baseline", "--comments"]) == 0
    commented = capsys.readouterr().out
    assert yaml.safe_load(commented) == yaml.safe_load(plain)
    assert "  channel_exchange_p: 0.5  # probability that a visible training image" in commented


def test_list_shows_installed_backbones(capsys):
    assert main(["list", "backbones"]) == 0
    assert "resnet-mini" in capsys.readouterr().out


def test_run_then_eval_a_checkpoint(with_example, tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--method", "kmeans-proxy", *TINY, "--set", f"data.root={tiny_root}",
                 "--output", str(out)]) == 0
    assert "visible-to-infrared" in capsys.readouterr().out
    assert (out / "metrics.json").is_file()
    assert main(["eval", "--checkpoint", str(out / "checkpoints" / "last.pt"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "metrics.json").read_text())
    assert doc["results"] == saved["results"]


def test_missing_checkpoint_and_bad_dataset_root(with_example, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["run", "--method", "kmeans-proxy", *TINY, "--set", f"data.root={tmp_path / 'missing'}",
                 "--output", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_data_check_generic_json(tiny_root, capsys):
    assert main(["data", "check", "generic", str(tiny_root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset"] == "generic"
    assert doc["train"]["visible"] == {"images": 24, "ids": 6}
    assert doc["protocols"]["visible-to-infrared"] == {"query": 12, "gallery": 12, "trials": 1}
