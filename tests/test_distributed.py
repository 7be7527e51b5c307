"""Distributed training (torchrun, gloo on CPU, 2 processes) against one process on the same global batch.

The probe method (tests/distributed/worker.py) has every piece that must be synchronised: BatchNorm in
training mode, a momentum memory updated in backward, k-reciprocal clustering, P x K sampling split by
identities, DDP gradient averaging. With any one of them left unsynchronised the losses differ by > 0.5
and the next epoch's pseudo-labels by > 40 % (checked by hand by disabling each), so the tolerances below
can only pass when all of them work.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reidkit import distributed

WORKER = Path(__file__).parent / "distributed" / "worker.py"
ARGS = ["--set", "optim.epochs=2", "--set", "optim.iterations=3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *args]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from reidkit.testing import make_tiny_dataset

    base = tmp_path_factory.mktemp("ddp")
    data = make_tiny_dataset(base / "data", ids=8, per_id=4)
    single, multi = base / "single", base / "multi"
    subprocess.run([sys.executable, str(WORKER), str(data), str(single), *ARGS], check=True, env=_env(),
                   cwd=WORKER.parent, timeout=300)
    subprocess.run(_torchrun(str(WORKER), str(data), str(multi), *ARGS), check=True, env=_env(),
                   cwd=WORKER.parent, timeout=300)
    return single, multi


@pytest.mark.timeout(600)
def test_two_processes_match_one_process(runs):
    single, multi = runs
    for epoch in (0, 1):
        one = np.load(single / f"labels-e{epoch}-r0.npy")
        for rank in (0, 1):  # clustered once on rank 0, broadcast: every rank holds the same labels
            np.testing.assert_array_equal(np.load(multi / f"labels-e{epoch}-r{rank}.npy"), one)
        assert (one >= 0).sum() > len(one) // 2, "the probe must cluster most samples to test anything"
    steps_one = json.loads((single / "steps-r0.json").read_text())
    for rank in (0, 1):
        steps = json.loads((multi / f"steps-r{rank}.json").read_text())
        assert len(steps) == len(steps_one) == 6
        for a, b in zip(steps_one, steps):
            for key in a:
                if key.startswith("memory"):
                    assert b[key] == pytest.approx(a[key], abs=1e-4), (key, a, b)
    doc_one = json.loads((single / "doc.json").read_text())
    doc = json.loads((multi / "doc.json").read_text())
    assert doc["world"] == 2 and doc_one["world"] == 1
    for protocol, r in doc_one["results"].items():
        assert doc["results"][protocol]["mAP"] == pytest.approx(r["mAP"], abs=1e-3)


@pytest.mark.timeout(600)
def test_only_rank0_writes_the_run_directory(runs):
    _, multi = runs
    run = multi / "run"
    assert (run / "metrics.json").is_file() and (run / "checkpoints" / "last.pt").is_file()
    doc = json.loads((run / "metrics.json").read_text())
    assert doc["world_size"] == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2  # one line per epoch, not per rank
    assert json.loads((run / "env.json").read_text())["world_size"] == 2


@pytest.mark.timeout(600)
def test_torchrun_cli_with_a_builtin_method(tmp_path, tiny_root):
    """``torchrun -m reidkit run`` end to end with CHCR (per-modality memories, hierarchy, refinement)."""
    from reidkit.testing import TINY_OVERRIDES

    out = tmp_path / "run"
    sets = [a for o in (*TINY_OVERRIDES, f"data.root={tiny_root}", "optim.epochs=2") for a in ("--set", o)]
    proc = subprocess.run(_torchrun("-m", "reidkit", "run", "--method", "chcr", "--output", str(out), *sets),
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["world_size"] == 2 and len(doc["epochs"]) == 2
    assert doc["results"]
    assert proc.stdout.count("run directory:") == 1  # rank 0 reports, rank 1 stays quiet


def test_single_process_helpers_are_no_ops():
    import torch

    assert not distributed.is_distributed() and distributed.rank() == 0 and distributed.world_size() == 1
    assert distributed.shard(10) == slice(0, 10)
    x = torch.arange(6.0).view(3, 2)
    assert distributed.gather_rows(x) is x
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.any_rank(False) is False
    calls = []
    wrapped = distributed.on_rank0(lambda v: calls.append(v) or v * 2)
    assert wrapped(3) == 6 and calls == [3]


def test_shards_cover_every_index_once(monkeypatch):
    for world in (1, 2, 3, 5):
        parts = []
        for r in range(world):
            monkeypatch.setattr(distributed, "world_size", lambda w=world: w)
            monkeypatch.setattr(distributed, "rank", lambda r=r: r)
            parts.extend(range(17)[distributed.shard(17)])
        assert parts == list(range(17))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("recipe", ["simclr", "moco-v2"])
def test_torchrun_pretrain(tmp_path, tiny_root, recipe):
    """``torchrun -m reidkit pretrain``: both ranks train (global BatchNorm, averaged gradients), rank 0
    alone writes the weights and a card that says two processes made them."""
    out = tmp_path / "w.pth"
    proc = subprocess.run(_torchrun("-m", "reidkit", "pretrain", "--dataset", "generic", "--root", str(tiny_root),
                                    "--output", str(out), "--recipe", recipe, "--steps", "3", "--warmup", "1",
                                    "--batch-size", "8", "--height", "32", "--width", "16", "--workers", "0"),
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["world_size"] == 2 and card["steps"] == 3 and out.is_file()
    assert proc.stdout.count("wrote ") == 1
