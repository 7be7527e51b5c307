"""Why does SMR not help IMSL on the synthetic data? Training-log diagnostics of the ablation runs.

Reads the per-epoch records (``metrics.json``) of the IMSL variants of a ``synthetic-ablations`` benchmark
folder and prints, per variant and epoch (mean over the finished seeds):

- the pseudo-label ARI against the hidden identities (the engine's diagnostic; never fed back);
- SMR's image-to-mask alignment as a cosine: ``loss_smr_align`` is ``-0.25 * mean cos(h_i, g_i)``;
- SMR's mask-cluster cross-entropy, next to its value for a uniform guess, ``ln K``;
- the precision of the cross-modality pairs the pseudo-labels make (``cross_pair_precision``, logged by
  runs from session 4 on; ``-`` for older runs). Chance is 1 / identities (0.006 on ``standard``).

    .venv/bin/python benchmarks/imsl_diagnostics.py runs/bench-ablations [--epochs 0 4 9 14] [--json OUT]
    .venv/bin/python benchmarks/imsl_diagnostics.py runs/imsl-ladder --variants mmc+mil+smr shape-cluster
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from reidkit.bench.results import collect_runs

VARIANTS = ("1-mmc", "2-mmc+mil", "full", "4-with-mmre")


def variant_logs(folder: Path, variant: str, dataset: str | None = None) -> list[list[dict]]:
    """The epoch records (``metrics.json`` ``epochs``) of every finished seed of one IMSL variant."""
    _, records = collect_runs(folder)
    return [r.metrics.get("epochs", []) for r in records
            if r.method == "imsl" and r.variant == variant and r.status == "done"
            and (dataset is None or r.dataset == dataset)]


def summarise(logs: list[list[dict]], epochs: list[int], smr_align_weight: float = 0.25) -> list[dict]:
    """One row per requested epoch: seeds, mean ARI, mean alignment cosine and mask CE (None if absent)."""
    rows = []
    for e in epochs:
        at = [run[e] for run in logs if len(run) > e]
        if not at:
            continue

        rows.append({"epoch": e, "seeds": len(at), "ari": _mean(at, "label_ari"), "clusters": _mean(at, "clusters"),
                     "align_cos": _mean(at, "loss_smr_align", -1.0 / smr_align_weight),
                     "mask_ce": _mean(at, "loss_smr_ce"), "cross_precision": _mean(at, "cross_pair_precision")})
    return rows


def _mean(logs: list[dict], key: str, scale: float = 1.0) -> float | None:
    vals = [r[key] * scale for r in logs if key in r]
    return float(np.mean(vals)) if vals else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a synthetic-ablations benchmark folder")
    ap.add_argument("--epochs", type=int, nargs="*", default=[0, 2, 4, 6, 8, 10, 12, 14])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), help="IMSL variants to show")
    ap.add_argument("--dataset", help="only this dataset of the folder (e.g. standard)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    out = {}
    print("| variant | epoch | seeds | pseudo-label ARI | cross-pair precision | align cos(h, g) | mask CE | ln K |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for variant in args.variants:
        rows = summarise(variant_logs(args.folder, variant, args.dataset), args.epochs)
        out[variant] = rows
        for r in rows:
            cos = "-" if r["align_cos"] is None else f"{r['align_cos']:.3f}"
            ce = "-" if r["mask_ce"] is None else f"{r['mask_ce']:.2f}"
            prec = "-" if r["cross_precision"] is None else f"{r['cross_precision']:.3f}"
            print(f"| {variant} | {r['epoch']} | {r['seeds']} | {r['ari']:.3f} | {prec} | {cos} | {ce} | "
                  f"{math.log(r['clusters']):.2f} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
