"""``reidkit bench --jobs N``: runs in worker processes, the same records as one at a time."""
from __future__ import annotations

import json
import os
import time

import pytest

from reidkit.bench.parallel import cpu_share, worker_device
from reidkit.bench.runner import FAILED_FILE, SUITE_INDEX, run_status, run_suite
from reidkit.bench.suite import load_suite
from reidkit.config import ConfigError

SUITE = """
name: demo
seeds: [0, 1]
datasets:
  tiny: {set: {data.dataset: generic}}
runs:
  - method: alpha
  - method: beta
"""


def fake_run(job, run_dir, *, device=None, callbacks=()):
    """A stand-in for the engine that runs in a worker: records which process ran it and its threads."""
    import torch

    if job.method == "beta" and job.seed == 1:
        raise RuntimeError("beta exploded\nsecond line")
    run_dir.mkdir(parents=True, exist_ok=True)
    time.sleep(0.3)  # long enough for the second worker to take the next run
    doc = {"method": job.method, "seed": job.seed, "wall_time_s": 2.5, "pid": os.getpid(),
           "threads": torch.get_num_threads(), "device": device, "epochs": []}
    (run_dir / "metrics.json").write_text(json.dumps(doc))
    return doc


def stopping_run(job, run_dir, *, device=None, callbacks=()):
    """Every run is stopped by request after its first epoch (as Ctrl-C does)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return {"stopped_early": True, "wall_time_s": 1.0}


def suite_file(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    return load_suite(path)


def test_jobs_run_in_separate_processes_with_a_share_of_the_cores(tmp_path):
    suite = suite_file(tmp_path)
    out = tmp_path / "bench"
    entries = run_suite(suite, out, run_fn=fake_run, jobs=2, device="cpu")
    status = {e["id"]: e["status"] for e in entries}
    assert status == {"tiny/alpha/seed0": "done", "tiny/alpha/seed1": "done",
                      "tiny/beta/seed0": "done", "tiny/beta/seed1": "failed"}
    docs = [json.loads((out / i / "metrics.json").read_text()) for i, s in status.items() if s == "done"]
    assert len({d["pid"] for d in docs} - {os.getpid()}) == 2, "two worker processes, not this one"
    assert {d["threads"] for d in docs} == {cpu_share(2)}
    assert {d["device"] for d in docs} == {"cpu"}
    # the bookkeeping is the same as one at a time: wall times in the index, failed.json with a traceback
    index = json.loads((out / SUITE_INDEX).read_text())
    assert {r["id"]: r.get("wall_time_s") for r in index["runs"]}["tiny/alpha/seed0"] == 2.5
    failed = json.loads((out / "tiny/beta/seed1" / FAILED_FILE).read_text())
    assert failed["error"] == "RuntimeError: beta exploded" and "Traceback" in failed["traceback"]
    # a later invocation, one at a time, retries only the failed run
    calls = []

    def retry(job, run_dir, **kw):
        calls.append(job.id)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text("{}")
        return {}

    run_suite(suite, out, run_fn=retry)
    assert calls == ["tiny/beta/seed1"] and run_status(out / "tiny/beta/seed1") == "done"


def test_a_run_stopped_by_request_stops_the_suite(tmp_path):
    suite = suite_file(tmp_path)
    out = tmp_path / "bench"
    entries = run_suite(suite, out, run_fn=stopping_run, jobs=2)
    # the two runs that had started stop; no other starts
    assert [e["status"] for e in entries] == ["pending"] * 4


def test_cpu_share_and_worker_devices():
    assert cpu_share(2, cpus=2) == 1 and cpu_share(3, cpus=2) == 1 and cpu_share(2, cpus=16) == 8
    assert worker_device("cpu", 1, 2) == "cpu"
    assert worker_device("cuda:1", 0, 2) == "cuda:1"  # an explicit GPU is kept
    import torch

    if not (torch.cuda.is_available() and torch.cuda.device_count() >= 2):
        assert worker_device("cuda", 1, 2) == "cuda"  # too few GPUs: the runs share the one asked for


def test_jobs_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="--jobs"):
        run_suite(suite_file(tmp_path), tmp_path / "bench", run_fn=fake_run, jobs=0)


def looping_run(job, run_dir, *, device=None, callbacks=()):
    """Epochs until stopped, under the engine's own signal handling (what a real run does)."""
    from types import SimpleNamespace

    from reidkit.engine.run import stop_on_interrupt

    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = SimpleNamespace(stop_requested=False, epoch=0)
    with stop_on_interrupt(trainer):
        (run_dir / "pid").write_text(str(os.getpid()))  # once the handler is in place
        while not trainer.stop_requested and trainer.epoch < 600:  # at most a minute
            time.sleep(0.1)
            trainer.epoch += 1
    (run_dir / "stopped").write_text(str(trainer.epoch))
    return {"stopped_early": True, "wall_time_s": 0.1 * trainer.epoch}


SIGTERM_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from reidkit.bench.runner import run_suite
from reidkit.bench.suite import load_suite
from test_bench_parallel import looping_run

if __name__ == "__main__":
    try:
        run_suite(load_suite({suite!r}), {out!r}, run_fn=looping_run, jobs=2)
    except KeyboardInterrupt:
        sys.exit(3)
"""


def test_sigterm_to_the_suite_stops_its_workers_too(tmp_path):
    """``kill``/``pkill`` of a ``--jobs 2`` suite reaches its workers: they stop after their epoch and the
    index says pending, instead of running on without the suite."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from reidkit.engine.run import _alive

    (tmp_path / "suite.yaml").write_text(SUITE)
    out = tmp_path / "bench"
    script = tmp_path / "suite_main.py"
    script.write_text(SIGTERM_SCRIPT.format(tests=str(Path(__file__).parent), suite=str(tmp_path / "suite.yaml"),
                                            out=str(out)))
    log = tmp_path / "suite.log"  # a file, not a pipe: workers left running would hold a pipe open
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=log.open("w"))
    pid_files = [out / "tiny/alpha/seed0/pid", out / "tiny/alpha/seed1/pid"]
    t0 = time.time()
    while not all(p.is_file() and p.read_text() for p in pid_files):
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.time() - t0 < 120, "the workers did not start"
        time.sleep(0.05)
    workers = [int(p.read_text()) for p in pid_files]
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 3, log.read_text()[-2000:]
        for pid_file in pid_files:  # each worker stopped by its run's handler, not by the suite's end
            assert (pid_file.parent / "stopped").is_file()
        t0 = time.time()
        while any(_alive(pid) for pid in workers):
            assert time.time() - t0 < 30, "a worker outlived the suite"
            time.sleep(0.1)
    finally:  # whatever failed, leave no process behind
        proc.kill()
        for pid in filter(_alive, workers):
            os.kill(pid, signal.SIGKILL)
    index = json.loads((out / SUITE_INDEX).read_text())
    assert {r["id"]: r["status"] for r in index["runs"]} == {
        "tiny/alpha/seed0": "pending", "tiny/alpha/seed1": "pending",
        "tiny/beta/seed0": "pending", "tiny/beta/seed1": "pending"}


def test_bench_command_exits_interrupted_when_a_stop_left_runs_pending(tmp_path, monkeypatch, capsys):
    """A suite stopped by request (SIGTERM, Ctrl-C) returns normally with runs pending; the command's exit
    status must say it did not finish, so that a script chaining suites can tell."""
    from reidkit.bench import runner
    from reidkit.cli import EXIT_INTERRUPTED, main

    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    monkeypatch.setattr(runner, "run_suite", lambda *a, **kw: run_suite(*a, **{**kw, "run_fn": stopping_run}))
    assert main(["bench", str(path), "--output", str(tmp_path / "bench")]) == EXIT_INTERRUPTED
    assert "stopped before the end: 4 pending" in capsys.readouterr().out
    monkeypatch.setattr(runner, "run_suite", lambda *a, **kw: run_suite(*a, **{**kw, "run_fn": fake_run}))
    assert main(["bench", str(path), "--output", str(tmp_path / "bench"), "--only", "alpha"]) == 0
