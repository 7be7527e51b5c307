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
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from reidkit.bench.results import collect_runs


def mean_map(metrics: dict) -> float:
    """Mean over the run's protocols of the final mAP, in %."""
    return 100.0 * float(np.mean([r["mAP"] for r in metrics["results"].values()]))


def scores(folder: Path, method: str) -> dict[str, dict[int, float]]:
    """``{variant: {seed: mean mAP}}`` of the finished runs of ``method`` under ``folder``."""
    _, records = collect_runs(folder)
    runs: dict[str, dict[int, float]] = {}
    for r in records:
        if r.method == method and r.status == "done" and r.seed is not None:
            runs.setdefault(r.variant or "", {})[r.seed] = mean_map(r.metrics)
    return runs


def paired(folder: Path, method: str, reference: str, reference_dir: Path | None = None
           ) -> dict[str, dict[int, float]]:
    """``{variant: {seed: mean mAP(variant) - mean mAP(reference)}}`` over the seeds both finished; the
    reference variant is read from ``reference_dir`` when given (then every variant of ``folder`` is
    compared with it)."""
    runs = scores(folder, method)
    source = reference_dir or folder
    refs = scores(reference_dir, method) if reference_dir else runs
    if reference not in refs:
        raise SystemExit(f"no finished run of {method}/{reference} under {source} (found: {sorted(refs)})")
    ref = refs[reference]
    return {v: {s: score - ref[s] for s, score in sorted(seeds.items()) if s in ref}
            for v, seeds in sorted(runs.items()) if reference_dir or v != reference}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("method")
    ap.add_argument("--reference", default="full", help="the variant the others are compared with")
    ap.add_argument("--reference-dir", type=Path, help="read the reference variant from this benchmark folder")
    args = ap.parse_args(argv)
    where = f" of {args.reference_dir}" if args.reference_dir else ""
    print(f"| {args.method} variant | minus {args.reference or '(no variant)'}{where}, per seed (mAP points) | mean |")
    print("|---|---|---:|")
    for variant, deltas in paired(args.folder, args.method, args.reference, args.reference_dir).items():
        per_seed = ", ".join(f"seed {s}: {d:+.1f}" for s, d in deltas.items())
        print(f"| {variant} | {per_seed} | {np.mean(list(deltas.values())):+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
