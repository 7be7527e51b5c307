"""The validation split (``data.val_ids``): which identities are held out, the protocols built from them,
the runs that score it (with and without the test split), the report of it, and bad-image skipping."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reidkit.bench.report import build_report, render_markdown, write_report
from reidkit.config import ConfigError
from reidkit.data.datasets.base import DatasetError, ReIDDataset
from reidkit.data.datasets.generic import GenericDataset
from reidkit.data.holdout import eligible_identities, hold_out
from reidkit.data.records import Sample
from reidkit.engine.run import load_dataset, resolve_run_config, run
from reidkit.testing import TINY_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]
TWO = ("visible", "infrared")
THREE = ("visible", "nir", "tir")


def handmade(modalities, seen: dict[int, tuple[str, ...]], shots: int = 2) -> ReIDDataset:
    """A dataset of Sample records only (no files): identity ``pid`` has ``shots`` images in each of
    ``seen[pid]``, on two cameras per modality (modality k uses cameras 2k+1 and 2k+2)."""
    train = [Sample(f"/nowhere/train/{m}/{pid}/c{2 * k + 1 + n % 2}_{n}.png", pid, 2 * k + 1 + n % 2, m)
             for pid, mods in seen.items() for k, m in enumerate(modalities) if m in mods
             for n in range(shots)]
    return ReIDDataset(None, modalities, train, {})


def all_in(modalities, ids) -> dict[int, tuple[str, ...]]:
    return {pid: tuple(modalities) for pid in ids}


def protocol_samples(protocols) -> list[Sample]:
    return [s for p in protocols.values() for s in (*p.query, *p.gallery_pool)]


def tiny_cfg(root, *overrides):
    return resolve_run_config("dc-baseline", overrides=[*TINY_OVERRIDES, f"data.root={root}", *overrides])


# ------------------------------------------------------------------------------------------------------
# which identities, and what is left to train on
# ------------------------------------------------------------------------------------------------------
def test_held_out_identities_leave_the_training_set_whole():
    seen = {**all_in(TWO, range(10)), 10: ("visible",), 11: ("infrared",)}
    ds = handmade(TWO, seen, shots=3)
    before = list(ds.train)
    out = hold_out(ds, 4, seed=3)
    held = set(out.validation_ids)
    assert len(held) == 4 and out.validation_ids == sorted(out.validation_ids)
    remaining = {s.person_id for s in out.train}
    assert not held & remaining
    assert remaining | held == set(seen)
    for pid in held:  # every held-out identity has images in two or more modalities
        assert len({s.modality for s in ds.train if s.person_id == pid}) >= 2
    # train + validation images are exactly the original training images, none twice
    val_paths = {s.path for s in protocol_samples(out.validation)}
    assert {s.path for s in out.train} | val_paths == {s.path for s in before}
    assert len(out.train) + len(val_paths) == len(before)
    assert val_paths == {s.path for s in before if s.person_id in held}  # every image of a held-out id
    assert out.num_train_ids == len(seen) - 4
    # the input dataset is left as it was
    assert ds.train == before and ds.num_train_ids == len(seen)


def test_identities_seen_in_one_modality_are_never_held_out():
    seen = {**all_in(TWO, (1, 4, 7)), 0: ("visible",), 2: ("infrared",), 3: ("visible",), 5: ("infrared",),
            6: ("visible",), -1: TWO}  # -1: unknown identity, never a validation identity
    ds = handmade(TWO, seen)
    assert eligible_identities(ds).tolist() == [1, 4, 7]
    for seed in range(6):
        assert set(hold_out(ds, 2, seed=seed).validation_ids) <= {1, 4, 7}
    assert hold_out(ds, 3, seed=0).validation_ids == [1, 4, 7]  # all the eligible ones
    with pytest.raises(DatasetError, match=r"data\.val_ids=4"):  # 8 identities, but only 3 eligible
        hold_out(ds, 4)


def test_the_choice_is_the_documented_draw_of_val_seed():
    ds = handmade(TWO, {**all_in(TWO, range(0, 80, 2)), 1: ("visible",), 3: ("infrared",)})
    pool = eligible_identities(ds)
    for seed in (0, 1, 12):
        want = np.sort(np.random.default_rng(seed).choice(pool, size=6, replace=False)).tolist()
        assert hold_out(ds, 6, seed=seed).validation_ids == want
    assert hold_out(ds, 6, seed=0).validation_ids != hold_out(ds, 6, seed=1).validation_ids
    assert hold_out(ds, 6, seed=5).validation_ids == hold_out(ds, 6, seed=5).validation_ids


def test_the_run_seed_does_not_change_the_validation_identities(tiny_root):
    a = load_dataset(tiny_cfg(tiny_root, "data.val_ids=2", "seed=0"))
    b = load_dataset(tiny_cfg(tiny_root, "data.val_ids=2", "seed=7", "data.val_seed=0"))
    assert a.validation_ids == b.validation_ids and len(a.validation_ids) == 2
    assert {s.path for s in a.train} == {s.path for s in b.train}
    drawn = {tuple(load_dataset(tiny_cfg(tiny_root, "data.val_ids=2", f"data.val_seed={v}")).validation_ids)
             for v in range(6)}
    assert len(drawn) > 1, "data.val_seed never changed the held-out identities"


def test_zero_is_a_no_op_and_too_many_is_refused():
    ds = handmade(TWO, all_in(TWO, range(5)))
    before = list(ds.train)
    assert hold_out(ds, 0) is ds
    assert ds.validation == {} and ds.validation_ids == [] and ds.train == before and ds.num_train_ids == 5
    assert dict(ds.validation) == {}
    assert dict(handmade(TWO, all_in(TWO, range(5))).validation) == {}  # never held out: empty
    with pytest.raises(DatasetError, match=r"data\.val_ids=6"):
        hold_out(ds, 6)
    with pytest.raises(DatasetError, match=r"data\.val_ids=4.*at least 2 must stay"):
        hold_out(ds, 4)
    assert len(hold_out(ds, 3).train) == 2 * 2 * 2  # two identities, two modalities, two shots


def test_config_defaults_and_ranges():
    cfg = resolve_run_config("dc-baseline")
    assert (cfg.data.val_ids, cfg.data.val_seed, cfg.eval.val_every, cfg.eval.test) == (0, 0, 1, True)
    with pytest.raises(ConfigError, match=r"data\.val_ids: -1 is out of range"):
        resolve_run_config("dc-baseline", overrides=["data.val_ids=-1"])
    with pytest.raises(ConfigError, match=r"data\.val_seed"):
        resolve_run_config("dc-baseline", overrides=["data.val_seed=-2"])
    with pytest.raises(ConfigError, match=r"eval\.val_every"):
        resolve_run_config("dc-baseline", overrides=["eval.val_every=-1"])


def test_load_dataset_refuses_too_many_with_the_key_name(tiny_root):
    with pytest.raises(DatasetError, match=r"data\.val_ids=5"):  # 6 identities: at least 2 must stay
        load_dataset(tiny_cfg(tiny_root, "data.val_ids=5"))


# ------------------------------------------------------------------------------------------------------
# the validation protocols
# ------------------------------------------------------------------------------------------------------
def test_two_modality_protocols_hold_only_held_out_identities():
    ds = handmade(TWO, {**all_in(TWO, range(8)), 8: ("visible",)})
    ds._protocols = {"test-protocol": object()}  # the test protocols are not touched
    out = hold_out(ds, 3, seed=1)
    assert list(out.validation) == ["visible-to-infrared", "infrared-to-visible"]
    assert out.protocols is ds.protocols and "test-protocol" not in out.validation
    held = set(out.validation_ids)
    for name, p in out.validation.items():
        q, g = name.split("-to-")
        assert p.query and p.gallery_pool
        assert {s.person_id for s in (*p.query, *p.gallery_pool)} <= held, name
        assert {s.modality for s in p.query} == {q} and {s.modality for s in p.gallery_pool} == {g}
        assert p.exclusion == "same-id-same-camera" and len(p.trials) == 1
        assert "validation" in p.info.get("split", "")
    v2i = out.validation["visible-to-infrared"]
    assert sorted(s.path for s in v2i.query) == sorted(
        s.path for s in ds.train if s.person_id in held and s.modality == "visible")


def test_three_modalities_add_one_versus_the_rest():
    seen = {**all_in(THREE, range(9)), 9: ("visible", "nir"), 10: ("tir",)}
    ds = handmade(THREE, seen)
    out = hold_out(ds, 4, seed=2)
    assert 10 not in out.validation_ids
    pairs = [f"{q}-to-{g}" for q in THREE for g in THREE if q != g]
    rest = ["visible-to-nir+tir", "nir-to-visible+tir", "tir-to-visible+nir"]
    assert set(out.validation) == {*pairs, *rest}
    held = set(out.validation_ids)
    assert {s.person_id for s in protocol_samples(out.validation)} == held
    p = out.validation["visible-to-nir+tir"]
    assert {s.modality for s in p.query} == {"visible"} and {s.modality for s in p.gallery_pool} == {"nir", "tir"}
    assert len(p.gallery_pool) == len(out.validation["visible-to-nir"].gallery_pool) + len(
        out.validation["visible-to-tir"].gallery_pool)


# ------------------------------------------------------------------------------------------------------
# runs
# ------------------------------------------------------------------------------------------------------
RUN = ("optim.epochs=2", "optim.iterations=1", "data.val_ids=2")


@pytest.fixture(scope="module")
def bench(tiny_root, tmp_path_factory):
    """A folder with two finished tiny runs: ``tuning`` (eval.test=false) and a plain one (test too)."""
    out = tmp_path_factory.mktemp("val") / "bench"
    tuning = run(tiny_cfg(tiny_root, *RUN, "eval.test=false", f"output={out / 'generic/dc-baseline/tuning/seed0'}"),
                 device="cpu")
    full = run(tiny_cfg(tiny_root, *RUN, f"output={out / 'generic/dc-baseline/seed0'}"), device="cpu")
    return out, tuning, full


def saved(out: Path, rel: str) -> dict:
    return json.loads((out / rel / "metrics.json").read_text())


def test_a_tuning_run_scores_the_validation_split_only(bench):
    out, tuning, _ = bench
    doc = saved(out, "generic/dc-baseline/tuning/seed0")
    assert doc["results"] == {} and tuning["results"] == {}
    names = {"visible-to-infrared", "infrared-to-visible"}
    assert set(doc["validation"]) == names
    for r in doc["validation"].values():
        assert all(0 <= r[k] <= 1 for k in ("rank1", "mAP", "mINP"))
    ids = doc["validation_ids"]
    assert len(ids) == 2 and ids == sorted(ids) and set(ids) <= set(range(6))
    first, last = doc["epochs"]
    assert first["identities"] == 4  # the two held-out identities never reach training
    assert {k for k in first if k.startswith("val_")} == {f"val_{n}_mAP" for n in names} | {"val_mean_mAP"}
    assert first["val_mean_mAP"] == pytest.approx(np.mean([first[f"val_{n}_mAP"] for n in names]))
    assert not any(k.startswith(("val_", "eval_")) for k in last)  # the final evaluation covers the last epoch
    logged = [json.loads(x) for x in (out / "generic/dc-baseline/tuning/seed0/metrics.jsonl").read_text().splitlines()]
    assert "val_mean_mAP" in logged[0]


def test_a_run_with_the_test_split_scores_both_and_trains_the_same(bench):
    out, tuning, _ = bench
    doc = saved(out, "generic/dc-baseline/seed0")
    assert set(doc["results"]) == set(doc["validation"]) == {"visible-to-infrared", "infrared-to-visible"}
    assert doc["validation_ids"] == tuning["validation_ids"]
    # eval.test only decides whether the test split is scored: training and validation are unchanged
    for name, r in tuning["validation"].items():
        assert doc["validation"][name]["mAP"] == pytest.approx(r["mAP"])
    assert doc["epochs"][0]["val_mean_mAP"] == pytest.approx(tuning["epochs"][0]["val_mean_mAP"])
    assert [e["loss"] for e in doc["epochs"]] == pytest.approx([e["loss"] for e in tuning["epochs"]])


def test_without_val_ids_nothing_changes(tiny_root, tmp_path):
    doc = run(tiny_cfg(tiny_root, "optim.epochs=2", "optim.iterations=1", f"output={tmp_path / 'r'}"),
              device="cpu")
    assert "validation" not in doc and "validation_ids" not in doc and doc["results"]
    assert not any(k.startswith("val_") for e in doc["epochs"] for k in e)
    assert doc["epochs"][0]["identities"] == 6


def test_val_every_zero_scores_the_final_model_only(tiny_root, tmp_path):
    doc = run(tiny_cfg(tiny_root, *RUN, "eval.val_every=0", "eval.test=false", f"output={tmp_path / 'r'}"),
              device="cpu")
    assert set(doc["validation"]) == {"visible-to-infrared", "infrared-to-visible"}
    assert not any(k.startswith("val_") for e in doc["epochs"] for k in e)


def test_cli_run_prints_the_validation_table(tiny_root, tmp_path, capsys):
    from reidkit.cli import main

    args = ["run", "--method", "dc-baseline", "--output", str(tmp_path / "r"), "--device", "cpu"]
    for o in (*TINY_OVERRIDES, f"data.root={tiny_root}", *RUN, "eval.test=false"):
        args += ["--set", o]
    assert main(args) == 0
    assert "validation split (last epoch)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------
# the report
# ------------------------------------------------------------------------------------------------------
def table_row(markdown: str, label: str) -> dict[str, str]:
    head = next(ln for ln in markdown.splitlines() if ln.startswith("| method"))
    cols = [c.strip() for c in head.strip().strip("|").split("|")]
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == label:
            return dict(zip(cols, cells))
    raise AssertionError(f"no row {label!r} in\n{markdown}")


def test_report_of_the_validation_split(bench):
    out, tuning, full = bench
    report = build_report(out, split="validation")
    assert "validation split" in report.heading
    md = render_markdown(report)
    assert md.startswith("# Benchmark report (validation split: for tuning, not results)")
    for label, doc in (("dc-baseline / tuning", tuning), ("dc-baseline", full)):
        row = table_row(md, label)
        for name, short in (("visible-to-infrared", "V→IR"), ("infrared-to-visible", "IR→V")):
            assert row[f"{short} mAP"] == f"{100 * doc['validation'][name]['mAP']:.1f} ± –", (label, name)
            assert row[f"{short} R1"] == f"{100 * doc['validation'][name]['rank1']:.1f} ± –", (label, name)
    assert write_report(out, split="validation") == md


def test_report_of_the_test_split_shows_n_a_for_a_tuning_run(bench):
    out, _, full = bench
    md = write_report(out, split="test")
    assert "validation split" not in md
    row = table_row(md, "dc-baseline")
    assert row["V→IR mAP"] == f"{100 * full['results']['visible-to-infrared']['mAP']:.1f} ± –"
    tuning = table_row(md, "dc-baseline / tuning")
    assert tuning["V→IR mAP"] == tuning["IR→V R1"] == "n/a"


def test_validation_curves_end_with_the_final_validation_scores(bench):
    out, tuning, _ = bench
    rows = {row.label: row for rows in build_report(out, split="validation").tables.values() for row in rows}
    (series,) = rows["dc-baseline / tuning"].epoch_series("val_mean_mAP")
    assert series[0] is not None
    assert series[-1] == pytest.approx(np.mean([r["mAP"] for r in tuning["validation"].values()]))
    (one,) = rows["dc-baseline / tuning"].epoch_series("val_visible-to-infrared_mAP")
    assert one[-1] == pytest.approx(tuning["validation"]["visible-to-infrared"]["mAP"])


def test_report_of_the_test_split_says_why_a_tuning_only_table_has_no_scores(bench, tmp_path):
    out, _, _ = bench
    only = tmp_path / "only-tuning"
    shutil.copytree(out / "generic/dc-baseline/tuning", only / "generic/dc-baseline/tuning")
    md = write_report(only, split="test")
    assert "No finished run of this table has test scores (eval.test=false" in md
    assert "reidkit report --split validation" in md
    assert "No finished run" not in write_report(only, split="validation")


def test_report_leaves_published_numbers_out_of_the_validation_split(bench):
    out, _, _ = bench
    reference = ROOT / "benchmarks" / "reference.yaml"
    test = build_report(out, reference=reference, reference_required=True)
    assert test.reference, "the reference file should be shown for the test split"
    val = build_report(out, reference=reference, reference_required=True, split="validation")
    assert val.reference == []


def test_report_refuses_an_unknown_split(bench):
    out, _, _ = bench
    with pytest.raises(ConfigError, match="split"):
        build_report(out, split="train")


def test_cli_report_split_validation(bench, capsys):
    from reidkit.cli import main

    out, tuning, _ = bench
    assert main(["report", str(out), "--split", "validation", "--no-reference"]) == 0
    text = capsys.readouterr().out
    assert "(validation split: for tuning, not results)" in text
    assert f"{100 * tuning['validation']['visible-to-infrared']['mAP']:.1f} ± –" in text


# ------------------------------------------------------------------------------------------------------
# bad images
# ------------------------------------------------------------------------------------------------------
def test_drop_bad_images_filters_the_validation_protocols(tmp_path):
    from reidkit.data.validate import drop_bad_images
    from reidkit.testing import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data")
    ds = hold_out(GenericDataset.from_root(root), 2, seed=0)
    test_sizes = {n: (len(p.query), len(p.gallery_pool)) for n, p in ds.protocols.items()}
    pid = ds.validation_ids[0]
    bad = min((root / "train" / "infrared" / str(pid)).glob("*.png"))
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    v2i, i2v = (len(ds.validation[n].gallery_pool) for n in ("visible-to-infrared", "infrared-to-visible"))
    i2v_query = len(ds.validation["infrared-to-visible"].query)
    skipped = drop_bad_images(ds)
    assert [s["path"] for s in skipped] == [str(bad)]
    for p in ds.validation.values():
        assert str(bad) not in {s.path for s in (*p.query, *p.gallery_pool)}
        assert all(t.max() < len(p.gallery_pool) for t in p.trials)
    assert len(ds.validation["visible-to-infrared"].gallery_pool) == v2i - 1
    assert ds.validation["visible-to-infrared"].trials[0].tolist() == list(range(v2i - 1))
    assert len(ds.validation["infrared-to-visible"].query) == i2v_query - 1
    assert len(ds.validation["infrared-to-visible"].gallery_pool) == i2v
    assert {n: (len(p.query), len(p.gallery_pool)) for n, p in ds.protocols.items()} == test_sizes


def test_report_plots_draw_the_validation_curves_for_the_validation_split(bench):
    from reidkit.bench.plots import report_plots

    out, _, _ = bench
    titles = [p.title for p in report_plots(build_report(out, split="validation").tables, "validation")]
    assert any(t.startswith("validation mAP (%) visible-to-infrared") for t in titles), titles
    assert not any(t.startswith("test mAP") or "mean" in t for t in titles), titles
    titles = [p.title for p in report_plots(build_report(out).tables)]
    assert not any(t.startswith("validation mAP") for t in titles), titles
