"""benchmarks/paired_deltas.py: seed-paired differences and shares of the supervised reference."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def deltas(benchmark_script):
    return benchmark_script("paired_deltas")


def fake_run(root: Path, rel: str, method: str, seed: int, maps: tuple[float, float]) -> None:
    """A finished run directory holding only what the script reads: metrics.json's final results."""
    run_dir = root / rel
    run_dir.mkdir(parents=True)
    results = {p: {"mAP": m, "rank1": m} for p, m in zip(("visible-to-infrared", "infrared-to-visible"), maps)}
    doc = {"method": method, "dataset": "synthetic", "seed": seed, "results": results, "epochs": []}
    (run_dir / "metrics.json").write_text(json.dumps(doc))


@pytest.fixture
def folders(tmp_path):
    unsup, sup = tmp_path / "unsup", tmp_path / "sup"
    for seed, (a, b) in enumerate([((0.10, 0.14), (0.20, 0.20)), ((0.06, 0.06), (0.05, 0.07))]):
        fake_run(unsup, f"synthetic/chcr/full/seed{seed}", "chcr", seed, a)
        fake_run(unsup, f"synthetic/chcr/1-baseline/seed{seed}", "chcr", seed, b)
    fake_run(sup, "synthetic/dc-baseline/seed0", "dc-baseline", 0, (0.40, 0.56))
    fake_run(sup, "synthetic/dc-baseline/seed1", "dc-baseline", 1, (0.30, 0.30))
    return unsup, sup


def test_paired_differences_are_per_seed_mean_map_points(deltas, folders):
    unsup, _ = folders
    out = deltas.paired(unsup, "chcr", "1-baseline")
    assert set(out) == {"full"}
    assert out["full"] == pytest.approx({0: 12.0 - 20.0, 1: 6.0 - 6.0})


def test_shares_divide_by_the_supervised_run_of_the_same_seed(deltas, folders):
    unsup, sup = folders
    out = deltas.shares(unsup, "chcr", sup)
    assert out["full"][0] == pytest.approx((12.0, 12.0 / 48.0))
    assert out["full"][1] == pytest.approx((6.0, 6.0 / 30.0))
    assert out["1-baseline"][0] == pytest.approx((20.0, 20.0 / 48.0))


def test_shares_skip_seeds_without_a_supervised_run(deltas, folders, tmp_path):
    unsup, _ = folders
    only_seed0 = tmp_path / "sup0"
    fake_run(only_seed0, "synthetic/dc-baseline/seed0", "dc-baseline", 0, (0.5, 0.5))
    assert set(deltas.shares(unsup, "chcr", only_seed0)["full"]) == {0}


def test_shares_need_a_supervised_run(deltas, folders):
    unsup, _ = folders
    with pytest.raises(SystemExit, match="no finished dc-baseline"):
        deltas.shares(unsup, "chcr", unsup)


def test_cli_prints_the_share_table(deltas, folders, capsys):
    unsup, sup = folders
    assert deltas.main([str(unsup), "chcr", "--share-of", str(sup)]) == 0
    out = capsys.readouterr().out
    assert "| full | seed 0: 12.0 (25 %), seed 1: 6.0 (20 %) | 22 % |" in out


def test_shares_take_the_best_supervised_variant_unless_told(deltas, folders, tmp_path, capsys):
    unsup, _ = folders
    two = tmp_path / "two"
    for seed, (a, b) in enumerate([(0.5, 0.3), (0.2, 0.3)]):
        fake_run(two, f"synthetic/dc-baseline/no-branches/seed{seed}", "dc-baseline", seed, (a, a))
        fake_run(two, f"synthetic/dc-baseline/seed{seed}", "dc-baseline", seed, (b, b))
    fake_run(two, "synthetic/dc-baseline/one-seed/seed0", "dc-baseline", 0, (0.9, 0.9))
    # means: no-branches 35, unnamed 30; one-seed finished fewer seeds, so it is not a candidate
    best = deltas.shares(unsup, "chcr", two)["full"]
    assert best[0] == pytest.approx((12.0, 12.0 / 50.0)) and best[1] == pytest.approx((6.0, 6.0 / 20.0))
    assert deltas.shares(unsup, "chcr", two, supervised_variant="")["full"][1] == pytest.approx((6.0, 6.0 / 30.0))
    with pytest.raises(SystemExit, match="no finished dc-baseline/nope"):
        deltas.shares(unsup, "chcr", two, supervised_variant="nope")
    assert deltas.main([str(unsup), "chcr", "--share-of", str(two)]) == 0
    assert "dc-baseline/no-branches of" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [["--reference", "1-baseline"], ["--reference-dir", "."]])
def test_cli_refuses_reference_options_with_share_of(deltas, folders, capsys, extra):
    unsup, sup = folders
    with pytest.raises(SystemExit):
        deltas.main([str(unsup), "chcr", "--share-of", str(sup), *extra])
    assert "do not apply" in capsys.readouterr().err


def test_cli_reference_defaults_to_full(deltas, folders, capsys):
    unsup, _ = folders
    assert deltas.main([str(unsup), "chcr"]) == 0
    assert "| 1-baseline | seed 0: +8.0, seed 1: +0.0 | +4.0 |" in capsys.readouterr().out


def test_a_suites_result_files_give_the_same_numbers_as_its_runs(deltas, folders, tmp_path):
    from reidkit.bench.results_collect import collect

    unsup, sup = folders
    entries = []
    for seed in range(2):
        for variant in ("full", "1-baseline"):
            rel = f"synthetic/chcr/{variant}/seed{seed}"
            entries.append({"id": rel, "dataset": "synthetic", "method": "chcr", "variant": variant,
                            "seed": seed, "trial": None, "dir": rel})
    (unsup / "suite.json").write_text(json.dumps({"suite": "fake", "runs": entries}))
    results = tmp_path / "results" / "fake"
    collect(unsup, results)
    assert deltas.shares(results, "chcr", sup) == deltas.shares(unsup, "chcr", sup)
    assert deltas.paired(results, "chcr", "1-baseline") == deltas.paired(unsup, "chcr", "1-baseline")
