"""The side-by-side report: numbers equal the runs' metrics.json, failures shown, reference kept apart;
plots and the pictures of one model."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from reidkit.bench import commands
from reidkit.bench.reference import load_reference, provenance_kind
from reidkit.bench.report import write_report
from reidkit.bench.results import Stat
from reidkit.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ("visible-to-infrared", "infrared-to-visible")


def write_run(out: Path, rel: str, *, method: str, seed: int, r1: float, m_ap: float, m_inp: float,
              wall: float, cluster: float | None, ari: float, epochs: int = 3, dataset: str = "synthetic",
              eval_map: bool = False, config_extra: dict | None = None) -> dict:
    """A fake finished run directory (metrics.json, config.yaml, env.json) as the engine writes it."""
    run_dir = out / rel
    run_dir.mkdir(parents=True)
    results = {}
    for k, p in enumerate(PROTOCOLS):
        shift = 0.05 * k
        cmc = [min(1.0, r1 - shift + 0.02 * i) for i in range(20)]
        results[p] = {"rank1": r1 - shift, "rank5": cmc[4], "rank10": cmc[9], "rank20": cmc[19],
                      "mAP": m_ap - shift, "mINP": m_inp - shift, "cmc": cmc, "trials": 1}
    records = []
    for e in range(epochs):
        rec = {"epoch": e, "clusters": 40 + 5 * e + seed, "outliers": 0.1,
               "label_ari": ari * (e + 1) / epochs, "time_prepare_s": 1.0, "time_train_s": 2.0,
               "time_epoch_s": 3.0}
        if cluster is not None:
            rec["time_cluster_s"] = cluster / epochs
        if eval_map and e + 1 < epochs:  # as the engine: the final evaluation scores the last epoch
            rec["eval_visible-to-infrared_mAP"] = m_ap * (e + 1) / epochs
        records.append(rec)
    doc = {"method": method, "dataset": dataset, "preset": "standard", "seed": seed, "wall_time_s": wall,
           "final_model": "last epoch", "results": results, "epochs": records}
    (run_dir / "metrics.json").write_text(json.dumps(doc))
    config = {"method": method, "seed": seed, "output": str(run_dir), "optim": {"epochs": epochs},
              **(config_extra or {})}
    (run_dir / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    (run_dir / "env.json").write_text(json.dumps({"reidkit": "0.1.0", "torch": "2.x", "device": "cpu",
                                                  "cpu_threads": 2, "git_commit": "abc123"}))
    return doc


CHCR = [  # seed, R1, mAP, mINP, wall, cluster seconds, final ARI
    (0, 0.50, 0.40, 0.20, 100.0, 20.0, 0.60),
    (1, 0.55, 0.42, 0.25, 110.0, 30.0, 0.70),
    (2, 0.70, 0.47, 0.21, 130.0, 26.0, 0.65),
]


@pytest.fixture
def bench(tmp_path) -> Path:
    out = tmp_path / "bench"
    for seed, r1, m_ap, m_inp, wall, cluster, ari in CHCR:
        write_run(out, f"synthetic-standard/chcr/seed{seed}", method="chcr", seed=seed, r1=r1, m_ap=m_ap,
                  m_inp=m_inp, wall=wall, cluster=cluster, ari=ari, eval_map=True)
    write_run(out, "synthetic-standard/imsl/no-smr/seed0", method="imsl", seed=0, r1=0.3, m_ap=0.25,
              m_inp=0.1, wall=50.0, cluster=None, ari=0.4)
    failed = out / "synthetic-standard/imsl/no-smr/seed1"
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(json.dumps({"error": "RuntimeError: out of memory",
                                                     "traceback": "..."}))
    broken = out / "synthetic-standard/dc-baseline/seed0"
    broken.mkdir(parents=True)
    (broken / "failed.json").write_text(json.dumps({"error": "ConfigError: bad key", "traceback": "..."}))
    return out


def by_hand(values):
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))  # sample std, ddof = 1
    return mean, std


def table_row(markdown: str, label: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in\n{markdown}")


def header(markdown: str) -> list[str]:
    line = next(ln for ln in markdown.splitlines() if ln.startswith("| method"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_report_numbers_equal_the_runs_metrics(bench):
    md = write_report(bench)
    cols = header(md)
    row = dict(zip(cols, table_row(md, "chcr")))
    for k, protocol in enumerate(PROTOCOLS):
        short = "V→IR" if k == 0 else "IR→V"
        for key, i in (("R1", 1), ("mAP", 2), ("mINP", 3)):
            values = [json.loads((bench / f"synthetic-standard/chcr/seed{s[0]}/metrics.json").read_text())
                      ["results"][protocol][{"R1": "rank1"}.get(key, key)] for s in CHCR]
            mean, std = by_hand([100 * v for v in values])
            assert row[f"{short} {key}"] == f"{mean:.1f} ± {std:.1f}", (protocol, key)
    assert row["n"] == "3"
    mean, std = by_hand([c[4] for c in CHCR])
    assert row["wall (s)"] == f"{mean:.0f} ± {std:.0f}"
    mean, std = by_hand([100 * c[5] / c[4] for c in CHCR])
    assert row["clustering (%)"] == f"{mean:.1f} ± {std:.1f}"
    mean, std = by_hand([c[6] for c in CHCR])  # the last epoch's ARI
    assert row["final ARI"] == f"{mean:.2f} ± {std:.2f}"
    # population std would differ: the test is not vacuous
    pop = np.std([100 * c[1] for c in CHCR])
    assert f"± {pop:.1f}" not in row["V→IR R1"]


def test_single_run_has_no_std_and_failed_runs_show(bench):
    md = write_report(bench)
    row = dict(zip(header(md), table_row(md, "imsl / no-smr")))
    assert row["V→IR R1"] == "30.0 ± –"
    assert row["n"] == "1 (1 failed)"
    assert row["clustering (%)"] == "n/a"  # the method logged no clustering time
    dc = dict(zip(header(md), table_row(md, "dc-baseline")))
    assert dc["V→IR R1"] == "failed" and dc["n"] == "0 (1 failed)"
    assert "## Failed runs" in md
    assert "`synthetic-standard/imsl/no-smr/seed1`: RuntimeError: out of memory" in md
    assert "`synthetic-standard/dc-baseline/seed0`: ConfigError: bad key" in md
    assert "sample standard deviation (ddof = 1)" in md and "no checkpoint, epoch or hyper-parameter" in md


def test_rows_follow_the_suite_index_and_flag_config_drift(tmp_path):
    out = tmp_path / "bench"
    same = dict(r1=0.5, m_ap=0.4, m_inp=0.2, wall=1, cluster=None, ari=0.1)
    write_run(out, "d/b/seed0", method="b", seed=0, **same)
    write_run(out, "d/a/seed0", method="a", seed=0, **same)
    write_run(out, "d/a/seed1", method="a", seed=1, **same, config_extra={"data": {"preset": "small"}})
    runs = [{"id": i, "dir": i, "dataset": "d", "method": m, "variant": None, "seed": s, "trial": None}
            for i, m, s in (("d/b/seed0", "b", 0), ("d/a/seed0", "a", 0), ("d/a/seed1", "a", 1),
                            ("d/c/seed0", "c", 0))]
    (out / "suite.json").write_text(json.dumps({"suite": "drift", "runs": runs}))
    md = write_report(out)
    labels = [table_row(md, lab)[0] for lab in ("b", "a †", "c")]
    assert md.index("| b |") < md.index("| a † |") < md.index("| c |")
    assert labels == ["b", "a †", "c"]
    assert table_row(md, "c")[1] == "not run" and "## Unfinished runs" in md
    assert "# Benchmark report: drift" in md


def test_reference_block_is_apart_and_filtered(bench, tmp_path):
    ref = tmp_path / "reference.yaml"
    ref.write_text("""
entries:
  - method: PGM
    setting: unsupervised
    results: {sysu_mm01/all-search: [56.29, 51.36, 35.06]}
    source: a log
    provenance: "[log]"
  - method: X
    results: {synthetic/visible-to-infrared: [12.5, null, null]}
    source: a paper
    provenance: "[paper, unverified]"
""")
    md = write_report(bench, reference=ref)
    measured, _, block = md.partition("## Published numbers (not measured here)")
    assert "PGM" not in md  # other dataset, default file: left out
    assert "| X |" in block and "| X |" not in measured and "12.5" in block
    assert "recalled from a paper" in block and "not measured by reidkit" in block
    only_real = tmp_path / "real.yaml"
    only_real.write_text(ref.read_text().split("  - method: X")[0])
    assert "## Published numbers" not in write_report(bench, reference=only_real)
    asked = write_report(bench, reference=only_real, reference_required=True)
    asked = asked.partition("## Published numbers")[2]
    assert "| PGM |" in asked and "None of these is on a dataset measured above." in asked


def test_committed_reference_file_is_valid_and_tagged():
    results = load_reference(ROOT / "benchmarks" / "reference.yaml")
    assert len(results) > 50
    assert {r.dataset for r in results} == {"sysu_mm01", "regdb", "llcm"}
    assert {provenance_kind(r.provenance) for r in results} == {"re-read", "recalled", "other"}
    pgm_log = [r for r in results
               if r.method == "PGM" and r.provenance == "[log]" and r.protocol == "all-search"]
    assert [(r.rank1, r.mAP, r.mINP) for r in pgm_log] == [("56.29", "51.36", "35.06")]
    sdcl = next(r for r in results if r.method.startswith("SDCL") and r.protocol == "indoor-search")
    assert sdcl.mAP == "76.40"  # as published, trailing zero kept
    assert all(r.source for r in results)


def test_html_report_embeds_plots(bench, tmp_path):
    html = write_report(bench, fmt="html", output=tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == html
    assert html.count("data:image/png;base64,") >= 5  # 2 CMC, test mAP, ARI, clusters
    for caption in ("CMC curves, synthetic-standard, visible-to-infrared", "pseudo-label ARI per epoch",
                    "clusters per epoch", "test mAP (%) visible-to-infrared per epoch"):
        assert caption in html
    assert 'colspan="3">V→IR</th>' in html


def test_markdown_plots_are_written_and_linked(bench, tmp_path):
    md = write_report(bench, output=tmp_path / "docs" / "report.md", plots_dir=tmp_path / "docs" / "img")
    pngs = sorted(p.name for p in (tmp_path / "docs" / "img").glob("*.png"))
    assert "synthetic-standard-cmc-visible-to-infrared.png" in pngs
    assert "](img/synthetic-standard-cmc-visible-to-infrared.png)" in md
    assert all((tmp_path / "docs" / "img" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_report_command(bench, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", str(bench), "--no-reference"])
    assert args.func(args) == 0
    assert "| chcr |" in capsys.readouterr().out
    args = parser.parse_args(["report", str(tmp_path / "missing")])
    with pytest.raises(ConfigError, match="benchmark folder not found"):
        args.func(args)
    args = parser.parse_args(["report", str(bench), "--format", "html", "--plots", str(tmp_path)])
    with pytest.raises(ConfigError, match="--plots is for --format markdown"):
        args.func(args)


def test_stat_semantics():
    assert Stat(()).mean is None and Stat((0.3,)).std is None
    assert Stat((1.0, 3.0)).std == pytest.approx(math.sqrt(2.0))


# ------------------------------------------------------------------------------------------------------
# pictures of one model
# ------------------------------------------------------------------------------------------------------
def test_ranked_lists_skip_excluded_entries_and_mark_matches():
    from reidkit.bench.visualize import pick_queries, ranked_lists
    from reidkit.data.records import Sample

    query = [Sample("q0", 1, 3, "infrared"), Sample("q1", 2, 6, "infrared")]
    gallery = [Sample("g0", 1, 2, "visible"), Sample("g1", 1, 1, "visible"), Sample("g2", 2, 2, "visible"),
               Sample("g3", 3, 1, "visible")]
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    g = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    lists = ranked_lists(q, g, query, gallery, [0, 1], rule="sysu-location", top=3)
    assert [s.path for s in lists[0].gallery] == ["g1", "g3"]  # camera-2 images skipped for a camera-3 query
    assert lists[0].matches == [True, False]
    assert [s.path for s in lists[1].gallery] == ["g2", "g3", "g1"]
    assert lists[1].matches == [True, False, False]
    twin = [Sample("x", 1, 3, "visible"), Sample("y", 1, 6, "visible")]
    lists = ranked_lists(q, g[:2], query, twin, [0], rule="same-id-same-camera", top=3)
    assert [s.path for s in lists[0].gallery] == ["y"]  # same identity and camera skipped
    assert pick_queries(list(range(10)), 3) == [0, 4, 9] or pick_queries(list(range(10)), 3) == [0, 5, 9]


def test_pictures_of_a_protocol(tiny_root, tmp_path, monkeypatch):
    from reidkit.bench import visualize
    from reidkit.bench.visualize import write_pictures

    monkeypatch.setattr(visualize, "ROWS_PER_PAGE", 3)
    from reidkit.data.datasets.generic import GenericDataset

    protocol = GenericDataset.from_root(tiny_root).protocols["visible-to-infrared"]
    query, gallery = list(protocol.query), protocol.gallery(0)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100, 8))

    def feats(samples):
        return np.stack([centres[s.person_id] + 0.3 * rng.normal(size=8) for s in samples])

    q, g = feats(query), feats(gallery)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    part = write_pictures(tmp_path, "visible-to-infrared", q, g, query, gallery, rule=protocol.exclusion,
                          queries=4, top=5, embedding="pca")
    assert part["files"] == ["ranked-visible-to-infrared-01.png", "ranked-visible-to-infrared-02.png",
                             "embedding-visible-to-infrared.png"]
    assert len(part["queries"]) == 4 and all(len(r["gallery"]) == 5 for r in part["queries"])
    first = part["queries"][0]
    assert all(e["modality"] == "infrared" for e in first["gallery"]) and first["modality"] == "visible"
    assert [e["match"] for e in first["gallery"]] == [e["person_id"] == first["person_id"]
                                                      for e in first["gallery"]]
    assert all((tmp_path / f).read_bytes()[:4] == b"\x89PNG" for f in part["files"])


def test_epoch_curves_end_with_the_final_evaluation(bench):
    from reidkit.bench.results import collect_runs, group_rows

    _, records = collect_runs(bench)
    rows = {row.label: row for rows in group_rows(records).values() for row in rows}
    chcr = rows["chcr"].epoch_series("eval_visible-to-infrared_mAP")
    want = {seed: m_ap for seed, _, m_ap, *_ in CHCR}  # the first protocol has no shift
    assert [s[-1] for s in chcr] == pytest.approx([want[r.metrics["seed"]] for r in rows["chcr"].done])
    for series, run in zip(chcr, rows["chcr"].done):
        assert series[:2] == pytest.approx([want[run.metrics["seed"]] / 3, 2 * want[run.metrics["seed"]] / 3])
    # a run that logged no curve gets no lone final point
    assert rows["imsl / no-smr"].epoch_series("eval_visible-to-infrared_mAP") == [[None, None, None]]


def test_eval_visualize_on_a_trained_checkpoint(example_method, tiny_root, tmp_path, monkeypatch, capsys):
    from reidkit import registry
    from reidkit.engine.run import run
    from reidkit.registry import Entry
    from reidkit.testing import tiny_config

    entries = dict(registry.METHODS._discover())
    entries["kmeans-proxy"] = Entry("kmeans-proxy", "reidkit_kmeans_proxy:KMeansProxy", "example",
                                    lambda: example_method)
    monkeypatch.setattr(registry.METHODS, "_entries", entries)
    monkeypatch.setattr(registry.METHODS, "_loaded", {})
    run(tiny_config(example_method, tiny_root, [f"output={tmp_path / 'run'}"]))
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", required=True)  # what the CLI's eval parser already has
    parser.add_argument("--set", action="append")
    parser.add_argument("--device")
    commands.add_eval_visualize_args(parser)
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.pt")
    args = parser.parse_args(["--checkpoint", ckpt, "--visualize", "3", "--output", str(tmp_path / "pics"),
                              "--embedding", "pca", "--protocol", "infrared-to-visible", "--top", "4"])
    assert commands.visualize_checkpoint(args) == 0
    doc = json.loads((tmp_path / "pics" / "ranked.json").read_text())
    assert list(doc["protocols"]) == ["infrared-to-visible"] and doc["method"] == "kmeans-proxy"
    part = doc["protocols"]["infrared-to-visible"]
    assert len(part["queries"]) == 3 and all(len(q["gallery"]) == 4 for q in part["queries"])
    assert all((tmp_path / "pics" / f).is_file() for f in part["files"])
    assert "embedding-infrared-to-visible.png" in capsys.readouterr().out
    bad = parser.parse_args(["--checkpoint", ckpt, "--visualize", "3"])
    with pytest.raises(ConfigError, match="needs --output"):
        commands.visualize_checkpoint(bad)


def test_environment_summary_marks_runs_of_modified_code():
    from reidkit.bench.results import RunRecord, environment_summary

    def record(i: int, env: dict) -> RunRecord:
        return RunRecord(id=f"r{i}", dataset="d", method="m", variant=None, seed=i, trial=None, dir=Path("."),
                         status="done", env=env)

    commit = "0123456789abcdef"
    summary = environment_summary([record(0, {"git_commit": commit, "git_dirty": False}),
                                   record(1, {"git_commit": commit, "git_dirty": True}),
                                   record(2, {"git_commit": commit})])  # run dirs from before git_dirty
    assert summary["git_commit"] == ["0123456789ab", "0123456789ab+dirty"]


def test_run_environment_records_whether_the_checkout_was_modified():
    import torch

    from reidkit.engine.run import environment

    env = environment(torch.device("cpu"), seed=0)
    assert "git_dirty" in env
    assert (env["git_commit"] is None) == (env["git_dirty"] is None)


def test_the_checkout_state_is_read_once_per_process(monkeypatch):
    import torch

    import reidkit.engine.run as run_module

    answers = iter(["abc123", "", "def456", " M reidkit/x.py"])  # a commit lands between two runs
    monkeypatch.setattr(run_module, "_git", lambda *args: next(answers))
    run_module.source_state.cache_clear()
    try:
        first = run_module.environment(torch.device("cpu"), seed=0)
        second = run_module.environment(torch.device("cpu"), seed=1)
    finally:
        run_module.source_state.cache_clear()
    # the process still runs the code it imported with the first run
    assert (first["git_commit"], first["git_dirty"]) == (second["git_commit"], second["git_dirty"]) == ("abc123", False)


def test_a_key_added_after_a_run_counts_as_its_default(tmp_path):
    out = tmp_path / "bench"
    same = dict(r1=0.5, m_ap=0.4, m_inp=0.2, wall=1, cluster=None, ari=0.1)
    write_run(out, "d/chcr/old/seed0", method="chcr", seed=0, **same)  # made before eval.every existed
    write_run(out, "d/chcr/old/seed1", method="chcr", seed=1, **same, config_extra={"eval": {"every": 0}})
    write_run(out, "d/chcr/new/seed0", method="chcr", seed=0, **same)
    write_run(out, "d/chcr/new/seed1", method="chcr", seed=1, **same, config_extra={"eval": {"every": 3}})
    md = write_report(out)
    assert table_row(md, "chcr / old")[0] == "chcr / old"  # same configuration: no mark
    assert table_row(md, "chcr / new †")[0] == "chcr / new †"  # a real difference is still flagged
