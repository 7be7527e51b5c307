"""The results page: per-run result files collected from run folders (small, idempotent), and the page made
from them (the report's numbers, the rows page.yaml names, pending seeds, published numbers apart)."""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pytest

from reidkit.bench import commands
from reidkit.bench.results_collect import collect, locate_suite_file
from reidkit.bench.results_page import build_page, render_page, spans
from reidkit.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("visible-to-infrared", "infrared-to-visible")
SCORES = {  # (method, seed) -> R1, mAP, mINP of visible-to-infrared (the other protocol 0.05 lower)
    ("chcr", 0): (0.50, 0.40, 0.20), ("chcr", 1): (0.55, 0.42, 0.25), ("chcr", 2): (0.70, 0.47, 0.21),
    ("imsl", 0): (0.30, 0.25, 0.10), ("imsl", 1): (0.35, 0.20, 0.12),
}
SUITE = """name: fake
description: two methods, three seeds
seeds: [0, 1, 2]
set: {optim.epochs: 3, optim.iterations: 10, model.weights: none}
datasets:
  synthetic-standard: {set: {dataset_args.preset: standard}}
runs:
  - method: chcr
  - method: imsl
    config: ../configs/imsl.yaml
    variants: {full: {}, no-smr: {method_args.smr: false}}
"""


def write_run(run_dir: Path, method: str, seed: int, *, commit: str = "0123456789abcdef") -> None:
    """A finished run directory as the engine writes it (metrics.json, config.yaml, env.json)."""
    r1, m_ap, m_inp = SCORES[(method, seed)]
    results = {p: {"rank1": r1 - 0.05 * k, "rank5": 0.9, "rank10": 0.95, "rank20": 1.0,
                   "mAP": m_ap - 0.05 * k, "mINP": m_inp - 0.05 * k, "cmc": [0.5] * 20, "trials": 1}
               for k, p in enumerate(PROTOCOLS)}
    epochs = [{"epoch": e, "label_ari": 0.2 * (e + 1) + 0.01 * seed, "time_cluster_s": 5.0 + seed}
              for e in range(3)]
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps({
        "method": method, "dataset": "synthetic", "preset": "standard", "seed": seed,
        "wall_time_s": 100.0 + 10 * seed, "final_model": "last epoch", "results": results, "epochs": epochs}))
    config = {"method": method, "seed": seed, "output": str(run_dir), "data": {"preset": "standard"},
              "model": {"weights": "none"}, "optim": {"epochs": 3, "iterations": 10}}
    (run_dir / "config.yaml").write_text(json.dumps(config))
    (run_dir / "env.json").write_text(json.dumps({
        "reidkit": "0.1.0", "git_commit": commit, "git_dirty": False, "device": "cpu", "cpu_threads": 1,
        "platform": "this machine", "weights_card": {"weights": "none", "file": "/local/x.pth",
                                                     "card_sha256": "beef"}}))


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A checkout-like folder (the working directory): benchmarks/fake.yaml and a benchmark folder run
    from another checkout, with chcr seeds 0-2, imsl/full seeds 0-1 (seed 2 pending) and no imsl/no-smr."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "fake.yaml").write_text(SUITE)
    bench = tmp_path / "runs" / "bench"
    runs = [("chcr", None, s) for s in range(3)]
    runs += [("imsl", v, s) for v in ("full", "no-smr") for s in range(3)]
    entries = []
    for method, variant, seed in runs:
        run_id = "/".join(["synthetic-standard", method, *([variant] if variant else []), f"seed{seed}"])
        entries.append({"id": run_id, "dataset": "synthetic-standard", "method": method, "variant": variant,
                        "seed": seed, "trial": None, "dir": run_id})
        if (method, seed) in SCORES and variant != "no-smr":
            write_run(bench / run_id, method, seed)
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "suite.json").write_text(json.dumps({
        "suite": "fake", "suite_file": "/elsewhere/wt/benchmarks/fake.yaml", "description": "two methods",
        "runs": entries}))
    return tmp_path


def cells(markdown: str, label: str, table: int = 0) -> dict[str, str]:
    """The row ``label`` of the ``table``-th table, as {column: cell}."""
    tables, current = [], None
    for line in markdown.splitlines():
        if line.startswith("| method"):
            current = {"header": [c.strip() for c in line.strip("|").split("|")], "rows": {}}
            tables.append(current)
        elif line.startswith("| ") and current is not None:
            row = [c.strip() for c in line.strip("|").split("|")]
            current["rows"][row[0]] = dict(zip(current["header"], row))
        elif not line.startswith("|"):
            current = None
    return tables[table]["rows"][label]


def page_text(folder="benchmarks/results", base=Path("benchmarks"), **kwargs) -> str:
    return render_page(build_page(folder, **kwargs), command="reidkit report --results x", base=base)


def test_collect_writes_small_machine_free_files_and_is_idempotent(repo):
    out = collect("runs/bench")
    assert out.suite == "fake" and out.into == Path("benchmarks/results/fake")
    assert sorted(out.written.values()) == ["new"] * 5
    assert {i for i, _ in out.skipped} == {"synthetic-standard/imsl/full/seed2",
                                            *(f"synthetic-standard/imsl/no-smr/seed{s}" for s in range(3))}
    path = repo / "benchmarks/results/fake/synthetic-standard/chcr/seed1.json"
    doc = json.loads(path.read_text())
    assert doc["suite_file"] == "benchmarks/fake.yaml"  # found in this checkout, not the one it ran in
    assert doc["metrics"]["results"]["visible-to-infrared"]["mAP"] == 0.42
    assert "cmc" not in doc["metrics"]["results"]["visible-to-infrared"]
    assert doc["metrics"]["final_label_ari"] == pytest.approx(0.61) and doc["metrics"]["cluster_time_s"] == 18
    assert "output" not in doc["config"] and doc["env"]["weights_card"] == {"weights": "none",
                                                                             "card_sha256": "beef"}
    assert "/local" not in path.read_text() and str(repo) not in path.read_text()
    imsl = json.loads((repo / "benchmarks/results/fake/synthetic-standard/imsl/full/seed0.json").read_text())
    assert imsl["config_file"] == "configs/imsl.yaml" and imsl["variant"] == "full"
    before = {p: p.read_bytes() for p in (repo / "benchmarks/results").rglob("*.json")}
    again = collect("runs/bench")
    assert set(again.written.values()) == {"unchanged"}
    assert {p: p.read_bytes() for p in (repo / "benchmarks/results").rglob("*.json")} == before


def test_page_numbers_are_the_runs_metrics(repo):
    collect("runs/bench")
    md = page_text()
    row = cells(md, "chcr")
    for key, i in (("R1", 0), ("mAP", 1), ("mINP", 2)):
        values = [100 * SCORES[("chcr", s)][i] for s in range(3)]
        assert row[f"V→IR {key}"] == f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"
    assert row["n"] == "3" and row["wall (s)"] == "110 ± 10" and row["final ARI"] == "0.61 ± 0.01"
    assert row["clustering (%)"] == f"{statistics.fmean([1500 / 100, 1800 / 110, 2100 / 120]):.1f} ± " \
                                    f"{statistics.stdev([1500 / 100, 1800 / 110, 2100 / 120]):.1f}"
    assert (row["config"], row["init"], row["steps"], row["seeds"], row["commit"]) == (
        "[fake.yaml](fake.yaml)", "none", "30", "0-2", "0123456789ab")
    imsl = cells(md, "imsl / full")
    assert imsl["n"] == "2 (1 pending)" and imsl["seeds"] == "0-1"
    assert imsl["config"] == "[fake.yaml](fake.yaml) + `configs/imsl.yaml`"
    assert "`fake/imsl/no-smr` on `synthetic-standard`: 3 runs in the suite, none collected" in md
    assert "## synthetic, preset standard" in md and "[fake.yaml](fake.yaml) (`fake`): two methods" in md


def test_recollecting_after_a_seed_finishes_adds_only_its_file(repo):
    collect("runs/bench")
    SCORES[("imsl", 2)] = (0.40, 0.30, 0.15)
    try:
        write_run(repo / "runs/bench/synthetic-standard/imsl/full/seed2", "imsl", 2,
                  commit="fedcba9876543210")
        out = collect("runs/bench/synthetic-standard/imsl/full/seed2")  # one run inside the benchmark folder
        assert out.written == {"synthetic-standard/imsl/full/seed2": "new"} and out.suite == "fake"
        row = cells(page_text(), "imsl / full")
    finally:
        del SCORES[("imsl", 2)]
    assert row["n"] == "3" and row["seeds"] == "0-2" and row["commit"] == "0123456789ab, fedcba987654"
    assert set(collect("runs/bench").written.values()) == {"unchanged"}


def test_runs_the_suite_file_no_longer_has_are_not_collected_and_old_files_are_named(repo):
    collect("runs/bench")
    # the suite file changes after the runs (chcr moved to another suite); the folder's suite.json still lists it
    (repo / "benchmarks/fake.yaml").write_text(SUITE.replace("  - method: chcr\n", ""))
    out = collect("runs/bench")
    assert set(out.written) == {"synthetic-standard/imsl/full/seed0", "synthetic-standard/imsl/full/seed1"}
    assert ("synthetic-standard/chcr/seed0", "not in benchmarks/fake.yaml") in out.skipped
    assert out.stale == [f"synthetic-standard/chcr/seed{s}" for s in range(3)]
    assert "3 result files in benchmarks/results/fake are of runs the suite file no longer has" in out.summary()
    index = json.loads((repo / "benchmarks/results/fake/index.json").read_text())
    assert index["runs"] == [f"synthetic-standard/imsl/{v}/seed{s}" for v in ("full", "no-smr") for s in range(3)]
    assert (repo / "benchmarks/results/fake/synthetic-standard/chcr/seed0.json").is_file()  # never deleted


def test_page_yaml_chooses_and_orders_the_rows(repo):
    collect("runs/bench")
    folder = repo / "benchmarks/results"
    (folder / "page.yaml").write_text("title: Results\nintro: The recommended rows.\n"
                                      "rows: [fake/imsl/full, fake/chcr]\n")
    md = page_text()
    assert md.startswith("# Results\n\nThe recommended rows.\n")
    assert md.index("| imsl / full |") < md.index("| chcr |") and "no-smr" not in md
    (folder / "page.yaml").write_text("rows: [other/chcr]\n")
    with pytest.raises(ConfigError, match="no results of suite 'other'"):
        build_page(folder)
    (folder / "page.yaml").write_text("rows: [fake/chcr]\nrow: []\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        build_page(folder)


def test_published_numbers_come_apart_with_their_sources(repo):
    collect("runs/bench")
    (repo / "benchmarks/reference.yaml").write_text(
        "entries:\n  - method: PGM\n    setting: unsupervised\n"
        "    results: {sysu_mm01/all-search: [56.29, 51.36, null]}\n"
        "    source: github.com/zesenwu23/USL-VI-ReID, log\n    provenance: '[log]'\n")
    (repo / "benchmarks/results/page.yaml").write_text("rows: [fake/chcr]\nreference: ../reference.yaml\n")
    md = page_text()
    block = md[md.index("## Published numbers (not measured here)"):]
    assert "| PGM | unsupervised | sysu_mm01 | all-search | 56.29 | 51.36 | – | [log] | " \
           "github.com/zesenwu23/USL-VI-ReID, log |" in block
    assert "56.29" not in md[:md.index("## Published numbers")]
    assert "Published numbers" not in page_text(use_reference=False)


def test_a_run_outside_a_benchmark_needs_into_and_a_foreign_folder_is_refused(repo):
    run = repo / "runs/single"
    write_run(run, "chcr", 0)
    with pytest.raises(ConfigError, match="needs --into"):
        collect(run)
    out = collect(run, "benchmarks/results/adhoc")
    assert out.written == {"synthetic-standard/chcr/seed0": "new"}
    with pytest.raises(ConfigError, match="holds the results of suite 'adhoc'"):
        collect("runs/bench", "benchmarks/results/adhoc")
    with pytest.raises(ConfigError, match="neither a benchmark folder"):
        collect(repo / "benchmarks")


def test_suite_file_is_found_in_this_checkout(repo):
    assert locate_suite_file("/tmp/other-checkout/benchmarks/fake.yaml", "fake") == "benchmarks/fake.yaml"
    assert locate_suite_file("/tmp/other-checkout/benchmarks/fake.yaml", "another-name") is None
    assert locate_suite_file(None, "fake") is None
    assert spans([2, 0, 1, 5, 7, 8]) == "0-2, 5, 7-8"


def test_report_command_collects_and_writes_the_page(repo, capsys):
    parser = argparse.ArgumentParser()
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))

    def run(*argv):
        args = parser.parse_args(["report", *argv])
        return args.func(args)

    assert run("--collect", "runs/bench") == 0
    printed = capsys.readouterr().out
    assert "fake: 5 result files in benchmarks/results/fake (5 new); 4 not collected" in printed
    assert run("--results", "benchmarks/results", "--output", "benchmarks/RESULTS.md", "--no-reference") == 0
    page = (repo / "benchmarks/RESULTS.md").read_text()
    assert "Generated by `reidkit report --results benchmarks/results --output benchmarks/RESULTS.md`" in page
    assert run("--results", "benchmarks/results", "--output", "benchmarks/RESULTS.md", "--no-reference") == 0
    assert (repo / "benchmarks/RESULTS.md").read_text() == page  # regenerating changes nothing
    for argv, match in ((("runs/bench", "--collect", "runs/bench"), "give one of"), ((), "give one of"),
                        (("runs/bench", "--into", "x"), "--into is for --collect"),
                        (("--results", "benchmarks/results", "--format", "html"), "Markdown page")):
        with pytest.raises(ConfigError, match=match):
            run(*argv)


def test_committed_results_page_is_generated_from_the_committed_results(monkeypatch):
    """benchmarks/RESULTS.md is what the generator makes of benchmarks/results; regenerate it with
    ``reidkit report --results benchmarks/results --output benchmarks/RESULTS.md`` when this fails."""
    monkeypatch.chdir(ROOT)
    page = ROOT / "benchmarks" / "RESULTS.md"
    if not (ROOT / "benchmarks" / "results").is_dir():
        pytest.skip("no committed results")
    text = render_page(build_page("benchmarks/results"),
                       command="reidkit report --results benchmarks/results --output benchmarks/RESULTS.md",
                       base=Path("benchmarks"))
    assert page.read_text() == text
