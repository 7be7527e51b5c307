"""Seed-paired differences between the variants of one method in a benchmark folder.

Runs of the same seed share the data, the initialisation seed and the batch order, so the per-seed
difference between two variants is a sharper comparison than two means with their spreads. For each
variant, prints the difference of the mean mAP over the protocols (percentage points) to a reference
variant, seed by seed, and their mean:

    .venv/bin/python benchmarks/paired_deltas.py runs/bench-ablations dc-baseline --reference full
    .venv/bin/python benchmarks/paired_deltas.py runs/bench-ablations chcr --reference 1-baseline
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


def paired(folder: Path, method: str, reference: str) -> dict[str, dict[int, float]]:
    """``{variant: {seed: mean mAP(variant) - mean mAP(reference)}}`` over the seeds both finished."""
    _, records = collect_runs(folder)
    runs: dict[str, dict[int, float]] = {}
    for r in records:
        if r.method == method and r.status == "done" and r.seed is not None:
            runs.setdefault(r.variant or "", {})[r.seed] = mean_map(r.metrics)
    if reference not in runs:
        raise SystemExit(f"no finished run of {method}/{reference} under {folder} (found: {sorted(runs)})")
    ref = runs[reference]
    return {v: {s: score - ref[s] for s, score in sorted(seeds.items()) if s in ref}
            for v, seeds in sorted(runs.items()) if v != reference}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("method")
    ap.add_argument("--reference", default="full", help="the variant the others are compared with")
    args = ap.parse_args(argv)
    print(f"| {args.method} variant | minus {args.reference}, per seed (mAP points) | mean |")
    print("|---|---|---:|")
    for variant, deltas in paired(args.folder, args.method, args.reference).items():
        per_seed = ", ".join(f"seed {s}: {d:+.1f}" for s, d in deltas.items())
        print(f"| {variant} | {per_seed} | {np.mean(list(deltas.values())):+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
