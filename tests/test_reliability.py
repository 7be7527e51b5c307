"""Crash safety (SIGKILL, SIGINT, SIGTERM), bad images, export parity."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from reidkit.cli import main
from reidkit.testing import check_exported, tiny_config

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ["optim.epochs=3", "optim.iterations=3"]

RUNNER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {plugin!r})
    from reidkit import registry
    from reidkit.engine.run import run
    from reidkit.testing import tiny_config
    from reidkit_kmeans_proxy import KMeansProxy
    registry.METHODS.get = lambda name: KMeansProxy
    cfg = tiny_config(KMeansProxy, {root!r}, {overrides!r})
    run(cfg, resume={resume!r})
""")


def start_run(root, out, resume=False):
    code = RUNNER.format(plugin=str(ROOT / "examples" / "plugin"), root=str(root),
                         overrides=[*OVERRIDES, f"output={out}"], resume=resume)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_epochs(out: Path, n: int, proc, timeout=240.0):
    """Wait until ``n`` epochs are checkpointed (metrics.jsonl has n lines)."""
    t0 = time.time()
    log = out / "metrics.jsonl"
    while time.time() - t0 < timeout:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def uninterrupted(example_method, tiny_root, tmp_path_factory):
    from reidkit import registry
    from reidkit.engine.run import run

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry.METHODS, "get", lambda name: example_method)
        out = tmp_path_factory.mktemp("full")
        return run(tiny_config(example_method, tiny_root, [*OVERRIDES, f"output={out}"]))


def test_sigkill_then_resume_equals_an_uninterrupted_run(uninterrupted, example_method, tiny_root, tmp_path,
                                                         monkeypatch):
    from reidkit import registry
    from reidkit.engine.run import run

    out = tmp_path / "killed"
    proc = start_run(tiny_root, out)
    wait_for_epochs(out, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()
    assert (out / ".lock").exists()  # left by the killed process: a stale lock, taken over below
    monkeypatch.setattr(registry.METHODS, "get", lambda name: example_method)
    resumed = run(tiny_config(example_method, tiny_root, [*OVERRIDES, f"output={out}"]), resume=True)
    assert resumed["results"] == uninterrupted["results"]
    assert not list(out.glob("checkpoints/.last.pt.*")), "no temporary checkpoint file is left behind"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_sigint_finishes_the_epoch_saves_and_stops(uninterrupted, example_method, tiny_root, tmp_path,
                                                   monkeypatch, signum):
    """Ctrl-C, and SIGTERM (kill, a scheduler's stop), finish the epoch, checkpoint it and stop."""
    from reidkit import registry
    from reidkit.engine.run import run

    out = tmp_path / "interrupted"
    proc = start_run(tiny_root, out)
    wait_for_epochs(out, 1, proc)
    proc.send_signal(signum)
    proc.wait(timeout=240)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert state["epoch"] < 2 and not (out / "metrics.json").exists()
    monkeypatch.setattr(registry.METHODS, "get", lambda name: example_method)
    resumed = run(tiny_config(example_method, tiny_root, [*OVERRIDES, f"output={out}"]), resume=True)
    assert resumed["results"] == uninterrupted["results"]


@pytest.fixture
def broken_root(tmp_path):
    from reidkit.testing import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data")
    bad = sorted((root / "train" / "visible" / "0").glob("*.png"))[0]
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    return root, bad


def test_a_truncated_image_is_one_line_naming_the_file(example_method, broken_root, tmp_path, capsys, monkeypatch):
    from reidkit import registry

    root, bad = broken_root
    monkeypatch.setattr(registry.METHODS, "get", lambda name: example_method)
    args = ["run", "--method", "kmeans-proxy", "--output", str(tmp_path / "r")]
    for o in [*OVERRIDES[:1], "optim.iterations=1", "data.dataset=generic", f"data.root={root}", "data.workers=0",
              "data.height=32", "data.width=16", "data.batch_size=8", "data.instances=2"]:
        args += ["--set", o]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and str(bad) in err and "\n" not in err
    assert main([*args, "--set", "data.on_bad_image=skip", "--set", "optim.epochs=1"]) == 0
    doc = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert [s["path"] for s in doc["skipped_images"]] == [str(bad)]
    assert str(bad) in (tmp_path / "r" / "log.txt").read_text()


def test_checkpoint_of_another_method_is_refused(example_method, tiny_root, tmp_path):
    from reidkit.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "c.pt", {"method": "imsl", "epoch": 0})
    with pytest.raises(CheckpointError, match="checkpoint of method 'imsl', not 'chcr'"):
        load_checkpoint(tmp_path / "c.pt", method="chcr")
    torch.save({"format_version": 99}, tmp_path / "v.pt")
    with pytest.raises(CheckpointError, match="format 99 is not supported"):
        load_checkpoint(tmp_path / "v.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable reidkit checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_unwritable_output_folder(example_method, tiny_root, tmp_path):
    from reidkit.engine.run import RunError, run_directory

    blocker = tmp_path / "a-file"
    blocker.write_text("")  # even root cannot create a folder below a file
    with pytest.raises(RunError, match="not writable"), run_directory(blocker / "run"):
        pass


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_eager_features(fmt, example_method, tiny_root, tmp_path):
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.engine.export import export_method
    from reidkit.engine.run import build_method_from

    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    cfg = tiny_config(example_method, tiny_root, ["model.stems=per-modality"])
    dataset = GenericDataset.from_config(cfg.data)
    method = build_method_from(example_method, cfg, dataset, torch.device("cpu")).eval()
    paths = export_method(method, dataset.modalities, (32, 16), tmp_path / f"embed.{fmt}", fmt)
    images = torch.randn(5, 3, 32, 16)
    check_exported(method, dataset.modalities, paths, fmt, images)
    assert len(paths) == 2 and paths[0].name == f"embed-infrared.{fmt}"
