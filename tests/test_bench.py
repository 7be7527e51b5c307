"""Benchmark suites: the file format, the runner (skip, resume, failures, index) and the bench command."""
from __future__ import annotations

import argparse
import json
import os
import textwrap
from pathlib import Path

import pytest
import yaml

from reidkit import registry
from reidkit.bench import commands
from reidkit.bench.runner import FAILED_FILE, SUITE_INDEX, run_status, run_suite
from reidkit.bench.suite import flatten_overrides, load_suite
from reidkit.config import ConfigError, parse_override

ROOT = Path(__file__).resolve().parents[1]


def write_suite(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


SUITE = """
    name: demo
    seeds: [0, 1]
    set: {optim.epochs: 1}
    datasets:
      tiny: {set: {data.dataset: generic}}
    runs:
      - method: alpha
      - method: beta
        set: {optim.lr: 0.01}
        variants: {full: {}, "off": {method_args.switch: false}}
"""


class FakeRuns:
    """Stands in for the engine: writes a metrics.json per run; methods named in ``fail`` raise."""

    def __init__(self, fail=()):
        self.fail = set(fail)
        self.calls: list[str] = []

    def __call__(self, job, run_dir, *, device=None, callbacks=()):
        self.calls.append(job.id)
        if job.method in self.fail:
            raise RuntimeError(f"{job.method} exploded\nsecond line")
        run_dir.mkdir(parents=True, exist_ok=True)
        doc = {"method": job.method, "dataset": "generic", "seed": job.seed, "wall_time_s": 1.0,
               "results": {"visible-to-infrared": {"rank1": 0.5, "mAP": 0.4, "mINP": 0.2}}, "epochs": []}
        (run_dir / "metrics.json").write_text(json.dumps(doc))
        return doc


# ------------------------------------------------------------------------------------------------------
# suite files
# ------------------------------------------------------------------------------------------------------
def test_suite_expands_methods_variants_seeds_in_order(tmp_path):
    suite = load_suite(write_suite(tmp_path, SUITE))
    assert suite.name == "demo"
    assert [j.id for j in suite.jobs] == [
        "tiny/alpha/seed0", "tiny/alpha/seed1",
        "tiny/beta/full/seed0", "tiny/beta/full/seed1", "tiny/beta/off/seed0", "tiny/beta/off/seed1"]
    off = suite.jobs[-1]
    # suite set < dataset set < run set < variant, then seed and output from the runner
    assert off.overrides == ("optim.epochs=1", 'data.dataset="generic"', "optim.lr=0.01",
                             "method_args.switch=false")
    assert off.all_overrides(Path("out/x"))[-2:] == ["seed=1", 'output="out/x"']


def test_overrides_round_trip_through_set_parsing():
    values = {"data": {"preset": "tiny", "root": None}, "optim.milestones": [3, 5],
              "method_args.consistency": "off", "eval.flip": True, "optim.lr": 1e-3}
    merged: dict = {}
    for text in flatten_overrides(values, "test"):
        key, value = next(iter(parse_override(text).items()))
        merged.setdefault(key, {}).update(value) if isinstance(value, dict) else merged.update({key: value})
    assert merged["data"] == {"preset": "tiny", "root": None}
    assert merged["optim"] == {"milestones": [3, 5], "lr": 1e-3}
    assert merged["method_args"] == {"consistency": "off"}  # a string, not YAML 1.1's false
    assert merged["eval"] == {"flip": True}


def test_regdb_trials_and_extra_overrides(tmp_path):
    path = write_suite(tmp_path, """
        seeds: 0
        datasets: {regdb: {trials: [1, 2]}}
        runs: [{method: alpha}]
    """)
    suite = load_suite(path, extra=["data.root=/data/RegDB"])
    assert [j.id for j in suite.jobs] == ["regdb/alpha/seed0-trial1", "regdb/alpha/seed0-trial2"]
    assert suite.jobs[1].all_overrides(Path("o"))[-4:] == ["data.root=/data/RegDB", "seed=0", 'output="o"',
                                                           "dataset_args.trial=2"]


@pytest.mark.parametrize("text, message", [
    ("runs: [{method: a}]\nseed: [0]\n", "did you mean 'seeds'"),
    ("runs: []\n", "runs must be a non-empty list"),
    ("runs: [{method: a, datasets: [nope]}]\n", "'nope' is not in the suite's datasets"),
    ("runs: [{method: a, varients: {}}]\n", "did you mean 'variants'"),
    ("runs: [{method: a}, {method: a}]\n", "appears twice"),
    ("runs: [{method: 'a/b'}]\n", "not a usable name"),
    ("seeds: [zero]\nruns: [{method: a}]\n", "seeds"),
    ("runs: [{method: a, set: 3}]\n", "expected a mapping"),
])
def test_suite_mistakes_are_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_suite(write_suite(tmp_path, text))


def test_missing_suite_file(tmp_path):
    with pytest.raises(ConfigError, match="suite file not found"):
        load_suite(tmp_path / "nope.yaml")


def test_every_committed_suite_loads():
    bench = ROOT / "benchmarks"
    files = [*sorted(bench.glob("*.yaml")), *sorted((bench / "real").glob("*.yaml"))]
    suites = [load_suite(f) for f in files if f.name != "reference.yaml"]
    assert {s.name for s in suites} >= {"smoke", "synthetic", "synthetic-random-init", "synthetic-ablations",
                                        "sysu-mm01", "regdb", "llcm", "rgbnt201"}
    synthetic = next(s for s in suites if s.name == "synthetic")
    assert {j.seed for j in synthetic.jobs} == {0, 1, 2}
    # the benchmark: every method from the shipped init, on the thermal and the near-infrared preset
    assert {j.dataset for j in synthetic.jobs} == {"synthetic-standard", "synthetic-standard-nir"}
    assert all('model.weights="synthetic-pretrained"' in j.overrides for j in synthetic.jobs)
    for job in synthetic.jobs:
        preset = "standard-nir" if job.dataset.endswith("-nir") else "standard"
        assert f'dataset_args.preset="{preset}"' in job.overrides
    random_init = next(s for s in suites if s.name == "synthetic-random-init")
    assert all('model.weights="none"' in j.overrides for j in random_init.jobs)


def test_smoke_suite_covers_every_built_in_method():
    """Built-in = registered by the reidkit distribution itself (setup.cfg), read from metadata."""
    entries = registry.METHODS._discover().values()
    built_in = {e.name for e in entries if e.value.startswith("reidkit_methods.")}
    assert built_in >= {"chcr", "imsl", "dc-baseline"}
    smoke = load_suite(ROOT / "benchmarks" / "smoke.yaml")
    assert {j.method for j in smoke.jobs} == built_in
    assert all('dataset_args.preset="tiny"' in j.overrides for j in smoke.jobs)


# ------------------------------------------------------------------------------------------------------
# the runner
# ------------------------------------------------------------------------------------------------------
def test_suite_runs_records_and_skips_finished_runs(tmp_path):
    suite = load_suite(write_suite(tmp_path, SUITE))
    out = tmp_path / "bench"
    fake = FakeRuns()
    entries = run_suite(suite, out, run_fn=fake)
    assert fake.calls == [j.id for j in suite.jobs]
    assert all(e["status"] == "done" for e in entries)
    index = json.loads((out / SUITE_INDEX).read_text())
    assert index["suite"] == "demo" and [r["dir"] for r in index["runs"]] == [j.id for j in suite.jobs]
    assert all((out / r["dir"] / "metrics.json").is_file() for r in index["runs"])
    # a second invocation runs nothing
    again = FakeRuns()
    run_suite(suite, out, run_fn=again)
    assert again.calls == []


def test_interrupted_suite_continues_where_it_stopped(tmp_path):
    suite = load_suite(write_suite(tmp_path, SUITE))
    out = tmp_path / "bench"

    class Interrupt(FakeRuns):
        def __call__(self, job, run_dir, **kw):
            if len(self.calls) == 3:
                self.calls.append(job.id)
                raise KeyboardInterrupt
            return super().__call__(job, run_dir, **kw)

    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, run_fn=Interrupt())
    index = json.loads((out / SUITE_INDEX).read_text())
    assert [r["status"] for r in index["runs"]] == ["done"] * 3 + ["pending"] * 3
    rest = FakeRuns()
    run_suite(suite, out, run_fn=rest)
    assert rest.calls == [j.id for j in suite.jobs[3:]]


def test_failed_run_is_recorded_and_the_suite_goes_on(tmp_path):
    suite = load_suite(write_suite(tmp_path, SUITE))
    out = tmp_path / "bench"
    entries = run_suite(suite, out, run_fn=FakeRuns(fail={"alpha"}))
    status = {e["id"]: e["status"] for e in entries}
    assert status["tiny/alpha/seed0"] == "failed" and status["tiny/beta/off/seed1"] == "done"
    failed = json.loads((out / "tiny/alpha/seed0" / FAILED_FILE).read_text())
    assert failed["error"] == "RuntimeError: alpha exploded"
    assert "Traceback" in failed["traceback"] and failed["method"] == "alpha"
    assert entries[0]["error"] == "RuntimeError: alpha exploded"
    # failed runs are retried by the next invocation; once they succeed failed.json is gone
    retry = FakeRuns()
    run_suite(suite, out, run_fn=retry)
    assert retry.calls == ["tiny/alpha/seed0", "tiny/alpha/seed1"]
    assert not (out / "tiny/alpha/seed0" / FAILED_FILE).exists()
    assert run_status(out / "tiny/alpha/seed0") == "done"


def test_run_held_by_a_live_process_is_left_alone(tmp_path):
    suite = load_suite(write_suite(tmp_path, SUITE))
    out = tmp_path / "bench"
    busy = out / "tiny/alpha/seed0"
    busy.mkdir(parents=True)
    (busy / ".lock").write_text(str(os.getppid()))  # a live process that is not us
    fake = FakeRuns()
    entries = run_suite(suite, out, run_fn=fake)
    assert "tiny/alpha/seed0" not in fake.calls and entries[0]["status"] == "busy"


def test_only_filter_and_other_suite_in_the_same_folder(tmp_path):
    suite = load_suite(write_suite(tmp_path, SUITE))
    out = tmp_path / "bench"
    fake = FakeRuns()
    run_suite(suite, out, run_fn=fake, only=["beta/off"])
    assert fake.calls == ["tiny/beta/off/seed0", "tiny/beta/off/seed1"]
    with pytest.raises(ConfigError, match="no run of suite"):
        run_suite(suite, out, run_fn=fake, only=["gamma"])
    other = load_suite(write_suite(tmp_path, SUITE.replace("name: demo", "name: other"), "other.yaml"))
    with pytest.raises(ConfigError, match="holds runs of suite 'demo'"):
        run_suite(other, out, run_fn=fake)


# ------------------------------------------------------------------------------------------------------
# the real engine and the command
# ------------------------------------------------------------------------------------------------------
def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def engine_suite(tmp_path: Path, tiny_root: Path) -> Path:
    return write_suite(tmp_path, f"""
        name: engine
        seeds: [0]
        set:
          data.dataset: generic
          data.root: {tiny_root}
          data.height: 32
          data.width: 16
          data.batch_size: 8
          data.instances: 2
          data.workers: 0
          optim.epochs: 1
          optim.iterations: 1
          eval.batch_size: 16
        datasets: {{tiny: {{}}}}
        runs:
          - method: kmeans-proxy
          - method: no-such-method
            datasets: [tiny]
    """)


def test_bench_command_runs_the_engine_resumes_and_reports_failures(with_example, tiny_root, tmp_path,
                                                                    capsys):
    suite = engine_suite(tmp_path, tiny_root)
    out = tmp_path / "bench"
    assert cli(["bench", str(suite), "--output", str(out)]) == 1  # one method is not installed
    index = json.loads((out / SUITE_INDEX).read_text())
    status = {r["id"]: r["status"] for r in index["runs"]}
    assert status == {"tiny/kmeans-proxy/seed0": "done", "tiny/no-such-method/seed0": "failed"}
    failed = json.loads((out / "tiny/no-such-method/seed0" / FAILED_FILE).read_text())
    assert failed["error"].startswith("RegistryError: method 'no-such-method' is not installed")
    run0 = out / "tiny/kmeans-proxy/seed0"
    doc = json.loads((run0 / "metrics.json").read_text())
    assert doc["seed"] == 0 and len(doc["epochs"]) == 1
    assert yaml.safe_load((run0 / "config.yaml").read_text())["output"] == str(run0)
    # simulate a run killed after its last epoch's checkpoint: drop metrics.json, keep the checkpoint
    before = json.loads((run0 / "metrics.json").read_text())
    (run0 / "metrics.json").unlink()
    capsys.readouterr()
    assert cli(["bench", str(suite), "--output", str(out), "--only", "kmeans-proxy"]) == 0
    after = json.loads((run0 / "metrics.json").read_text())
    assert after["results"] == before["results"]  # resumed from the last checkpoint: same model
    assert "resuming after epoch 0" in (run0 / "log.txt").read_text()
    assert "suite engine: 1 done" in capsys.readouterr().out


def test_dry_run_resolves_every_config(with_example, tiny_root, tmp_path, capsys):
    suite = engine_suite(tmp_path, tiny_root)
    assert cli(["bench", str(suite), "--output", str(tmp_path / "o"), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "tiny/kmeans-proxy/seed0" in out and "no-such-method' is not installed" in out
    assert not (tmp_path / "o").exists()


def test_suites_that_pair_with_the_benchmark_train_its_recipes():
    """The runs that mask-sources.yaml and ladders.yaml pair with synthetic.yaml's (the exact-mask IMSL and
    the image-merge CHCR runs, the ladders' `full` IMSL rung) resolve to synthetic.yaml's configs: a recipe
    changed in one suite file and not the others would pair runs of different recipes."""
    from reidkit.config import drop_keys, to_dict
    from reidkit.engine.run import resolve_run_config

    def configs(name: str) -> dict[tuple[str, str, str | None, int], dict]:
        suite = load_suite(ROOT / "benchmarks" / name)
        return {(j.dataset, j.method, j.variant, j.seed): drop_keys(to_dict(resolve_run_config(
            j.method, config_file=j.config_file, overrides=j.all_overrides(Path("run")))), [("output",)])
            for j in suite.jobs if j.seed == 0 and j.method in ("chcr", "imsl")
            and j.variant in (None, "smr", "image", "full")}

    benchmark, masks = configs("synthetic.yaml"), configs("mask-sources.yaml")
    ladders = configs("ladders.yaml")
    for preset in ("standard", "standard-nir"):
        reference = {m: benchmark[f"synthetic-{preset}", m, None, 0] for m in ("chcr", "imsl")}
        assert masks[f"{preset}.exact", "imsl", "smr", 0] == reference["imsl"]
        assert masks[f"{preset}.exact", "chcr", "image", 0] == reference["chcr"]
        assert ladders[f"synthetic-{preset}", "imsl", "full", 0] == reference["imsl"]
