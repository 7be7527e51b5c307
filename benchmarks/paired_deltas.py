"""Seed-paired differences between the variants of one method in a benchmark folder.

Runs of the same seed share the data, the initialisation seed and the batch order, so the per-seed
difference between two variants is a sharper comparison than two means with their spreads. For each
variant, prints the difference of the mean mAP over the protocols (percentage points) to a reference
variant, seed by seed, and their mean:

    .venv/bin/python benchmarks/paired_deltas.py runs/bench-ablations dc-baseline --reference full
    .venv/bin/python benchmarks/paired_deltas.py runs/bench-ablations chcr --reference 1-baseline

``--reference-dir`` reads the reference variant from another benchmark folder (same data and seeds), e.g.
the tuned learning rate against the published one (the suite without variants is the reference ``''``):

    .venv/bin/python benchmarks/paired_deltas.py runs/bench-tuned chcr --reference-dir runs/bench-synthetic --reference ''

A folder with several datasets (e.g. ``imsl_ladder.yaml``'s ``standard`` and ``standard-3m``) needs
``--dataset`` (the suite's dataset key, the first folder of a run id). ``--pairs`` averages only the
directed modality pairs, leaving out the one-versus-the-rest protocols of 3-modality data, as the IMSL
ladder tables do:

    .venv/bin/python benchmarks/paired_deltas.py runs/imsl-ladder-v4 imsl --dataset standard-3m --pairs --reference mmc

``--share-of DIR`` prints, instead of differences, every variant's mean mAP as a share of the supervised
reference's (``--supervised``, default ``dc-baseline``) in ``DIR`` on the same seed: where ``DIR`` holds
several variants of it, the one with the highest mean (the bar is the supervised model at its best; or
``--supervised-variant``), e.g. the 3,000-step runs against the converged reference:

    .venv/bin/python benchmarks/paired_deltas.py runs/long-budget chcr --share-of runs/dc-converged

Every folder may also be a suite's committed result files (``benchmarks/results/<suite>``, written by
``reidkit report --collect``), so the committed numbers can be compared without the run folders:

    .venv/bin/python benchmarks/paired_deltas.py benchmarks/results/synthetic imsl --dataset synthetic-standard-nir \
        --share-of benchmarks/results/synthetic
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from reidkit.bench.results import RunRecord, collect_runs, directed_pairs
from reidkit.bench.results_file import INDEX, load_results, to_record


def mean_map(metrics: dict, pairs: bool = False) -> float:
    """Mean over the run's protocols of the final mAP, in %; ``pairs``: only the directed pairs
    (``a-to-b`` with one modality on each side, not ``a-to-b+c``)."""
    results = metrics["results"]
    names = directed_pairs(results) if pairs else list(results)
    return 100.0 * float(np.mean([results[n]["mAP"] for n in names]))


def records(folder: Path) -> list[RunRecord]:
    """The runs of a benchmark folder, or of a suite's result files (a folder with ``index.json``)."""
    if (folder / INDEX).is_file():
        return [to_record(doc, doc["_path"]) for doc in load_results(folder)[1]]
    return collect_runs(folder)[1]


def scores(folder: Path, method: str, dataset: str | None = None, pairs: bool = False
           ) -> dict[str, dict[int, float]]:
    """``{variant: {seed: mean mAP}}`` of the finished runs of ``method`` under ``folder`` (on ``dataset``,
    the suite's dataset key, when given; a folder holding several datasets needs it)."""
    chosen = [r for r in records(folder) if r.method == method and r.status == "done" and r.seed is not None
              and (dataset is None or r.dataset == dataset)]
    found = sorted({r.dataset for r in chosen})
    if dataset is None and len(found) > 1:
        raise SystemExit(f"{folder} holds {method} runs on several datasets ({', '.join(found)}): "
                         f"choose one with --dataset")
    runs: dict[str, dict[int, float]] = {}
    for r in chosen:
        runs.setdefault(r.variant or "", {})[r.seed] = mean_map(r.metrics, pairs)
    return runs


def paired(folder: Path, method: str, reference: str, reference_dir: Path | None = None, *,
           dataset: str | None = None, pairs: bool = False) -> dict[str, dict[int, float]]:
    """``{variant: {seed: mean mAP(variant) - mean mAP(reference)}}`` over the seeds both finished; the
    reference variant is read from ``reference_dir`` when given (then every variant of ``folder`` is
    compared with it)."""
    runs = scores(folder, method, dataset, pairs)
    source = reference_dir or folder
    refs = scores(reference_dir, method, dataset, pairs) if reference_dir else runs
    if reference not in refs:
        raise SystemExit(f"no finished run of {method}/{reference} under {source} (found: {sorted(refs)})")
    ref = refs[reference]
    return {v: {s: score - ref[s] for s, score in sorted(seeds.items()) if s in ref}
            for v, seeds in sorted(runs.items()) if reference_dir or v != reference}


def shares(folder: Path, method: str, reference_dir: Path, supervised: str = "dc-baseline", *,
           dataset: str | None = None, pairs: bool = False, supervised_variant: str | None = None
           ) -> dict[str, dict[int, tuple[float, float]]]:
    """``{variant: {seed: (mean mAP, that / the supervised run's mean mAP on the seed)}}`` over the seeds
    that ``reference_dir`` holds a finished ``supervised`` run for.

    The supervised run is ``supervised_variant`` when given (``''``: the runs without a variant name);
    otherwise, where ``reference_dir`` holds several variants of it, the one with the highest mean over its
    seeds (the benchmark's bar is the supervised model at its best, e.g. dc-baseline with or without its
    branches), among those that finished the most seeds."""
    _, ref = supervised_scores(reference_dir, supervised, dataset, pairs, supervised_variant)
    return divide(scores(folder, method, dataset, pairs), ref)


def divide(runs: dict[str, dict[int, float]], ref: dict[int, float]) -> dict[str, dict[int, tuple[float, float]]]:
    """``{variant: {seed: (score, score / ref[seed])}}`` over the seeds ``ref`` holds (with a positive score)."""
    return {v: {s: (score, score / ref[s]) for s, score in sorted(seeds.items()) if s in ref and ref[s] > 0}
            for v, seeds in sorted(runs.items())}


def supervised_scores(reference_dir: Path, supervised: str, dataset: str | None = None, pairs: bool = False,
                      variant: str | None = None) -> tuple[str, dict[int, float]]:
    """``(variant, {seed: mean mAP})``: the supervised run that :func:`shares` divides by (see there)."""
    refs = scores(reference_dir, supervised, dataset, pairs)
    if not refs:
        raise SystemExit(f"no finished {supervised} run under {reference_dir}")
    if variant is not None:
        if variant not in refs:
            raise SystemExit(f"no finished {supervised}/{variant} run under {reference_dir} "
                             f"(found: {sorted(refs)})")
        return variant, refs[variant]
    most = max(len(seeds) for seeds in refs.values())
    best = max((v for v, seeds in refs.items() if len(seeds) == most),
               key=lambda v: (float(np.mean(list(refs[v].values()))), v))
    return best, refs[best]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("method")
    ap.add_argument("--reference", help="the variant the others are compared with (default: full)")
    ap.add_argument("--reference-dir", type=Path, help="read the reference variant from this benchmark folder")
    ap.add_argument("--dataset", help="only the runs on this dataset (the suite's dataset key)")
    ap.add_argument("--pairs", action="store_true",
                    help="average the directed modality pairs only (no one-versus-the-rest protocols)")
    ap.add_argument("--share-of", type=Path, metavar="DIR",
                    help="print each variant's mean mAP as a share of the supervised run's in DIR, seed by seed")
    ap.add_argument("--supervised", default="dc-baseline", help="the supervised method of --share-of")
    ap.add_argument("--supervised-variant", metavar="NAME",
                    help="the supervised variant of --share-of ('' for the runs without a variant name; default: "
                         "the one with the highest mean over the seeds)")
    args = ap.parse_args(argv)
    if args.share_of:
        if args.reference is not None or args.reference_dir:
            ap.error("--share-of divides by the --supervised method's runs; --reference and --reference-dir "
                     "do not apply to it")
        chosen, ref = supervised_scores(args.share_of, args.supervised, args.dataset, args.pairs,
                                        args.supervised_variant)
        table = divide(scores(args.folder, args.method, args.dataset, args.pairs), ref)
        name = "/".join(filter(None, (args.supervised, chosen)))
        print(f"| {args.method} variant | mean mAP / {name} of {args.share_of}, per seed | mean share |")
        print("|---|---|---:|")
        for variant, per_seed in table.items():
            if not per_seed:
                continue
            cells = ", ".join(f"seed {s}: {m:.1f} ({100 * r:.0f} %)" for s, (m, r) in per_seed.items())
            print(f"| {variant} | {cells} | {100 * np.mean([r for _, r in per_seed.values()]):.0f} % |")
        return 0
    reference = "full" if args.reference is None else args.reference
    deltas_by_variant = paired(args.folder, args.method, reference, args.reference_dir,
                               dataset=args.dataset, pairs=args.pairs)
    where = f" of {args.reference_dir}" if args.reference_dir else ""
    print(f"| {args.method} variant | minus {reference or '(no variant)'}{where}, per seed (mAP points) | mean |")
    print("|---|---|---:|")
    for variant, deltas in deltas_by_variant.items():
        per_seed = ", ".join(f"seed {s}: {d:+.1f}" for s, d in deltas.items())
        print(f"| {variant} | {per_seed} | {np.mean(list(deltas.values())):+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
