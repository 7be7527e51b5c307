"""Speed of ``rank_metrics`` against the per-query reference, in one run, on the same matrices.

    .venv/bin/python benchmarks/rank_metrics.py [--size 4000] [--ids 400] [--repeats 5]

Data: ``size`` queries x ``size`` gallery images of ``ids`` identities (size / ids images each), 256-d
float32 features = identity centre + noise, L2-normalised; distance = negative inner product. Two
exclusion settings: none, and a same-identity-same-camera mask over 4 cameras. The vectorised time is the
best of ``repeats`` runs (the machine is shared); the reference runs once per setting. Results are checked
equal before any time is printed.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from reidkit.evaluation import rank_metrics
from reidkit.evaluation.reference import rank_metrics_reference


def hoisted_sort_loop(dist, query_ids, gallery_ids, *, ignore=None, dedup_cmc=False):
    """AGW-style variant: one stable argsort of the whole matrix, then a per-query loop (rank1 + mAP)."""
    order = np.argsort(dist, axis=1, kind="stable")
    aps, firsts = [], []
    for i in range(dist.shape[0]):
        row = order[i] if ignore is None else order[i][~ignore[i, order[i]]]
        ranked = gallery_ids[row]
        hits = np.flatnonzero(ranked == query_ids[i]) + 1
        if hits.size == 0:
            continue
        aps.append(np.mean(np.arange(1, hits.size + 1) / hits))
        if dedup_cmc:
            _, first_seen = np.unique(ranked, return_index=True)
            firsts.append(int(np.sum(first_seen < first_seen[np.searchsorted(_, query_ids[i])])) + 1)
        else:
            firsts.append(int(hits[0]))
    return {"mAP": float(np.mean(aps)), "rank1": float(np.mean(np.asarray(firsts) == 1))}


def make_case(size: int, ids: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(ids), size // ids)[:size]
    centres = rng.standard_normal((ids, 256)).astype(np.float32)

    def features():
        f = centres[labels] + 3.0 * rng.standard_normal((len(labels), 256)).astype(np.float32)
        return f / np.linalg.norm(f, axis=1, keepdims=True)

    q, g = features(), features()
    cams_q, cams_g = rng.integers(1, 5, len(labels)), rng.integers(1, 5, len(labels))
    ignore = (labels[:, None] == labels[None, :]) & (cams_q[:, None] == cams_g[None, :])
    return -(q @ g.T), labels, ignore


def timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--ids", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dist, labels, ignore = make_case(args.size, args.ids)
    print(f"# {args.size} x {args.size}, {args.ids} identities, float32; numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    print(f"| exclusion | dedup CMC | rank_metrics (best of {args.repeats}) | per-query reference | ratio "
          "| hoisted-sort loop | ratio | rank-1 | mAP |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mask_name, mask in (("none", None), ("same-id-same-camera", ignore)):
        for dedup in (False, True):
            kw = dict(ignore=mask, dedup_cmc=dedup)
            fast = min(timed(rank_metrics, dist, labels, labels, **kw)[0] for _ in range(args.repeats))
            got = rank_metrics(dist, labels, labels, **kw)
            slow, want = timed(rank_metrics_reference, dist, labels, labels, **kw)
            hoist, alt = timed(hoisted_sort_loop, dist, labels, labels, **kw)
            for key in ("mAP", "mINP", "rank1", "rank5", "rank20"):
                assert abs(got[key] - want[key]) < 1e-12, (key, got[key], want[key])
            assert abs(alt["mAP"] - got["mAP"]) < 1e-12 and abs(alt["rank1"] - got["rank1"]) < 1e-12
            print(f"| {mask_name} | {dedup} | {fast:.3f} s | {slow:.2f} s | {slow / fast:.0f}x "
                  f"| {hoist:.2f} s | {hoist / fast:.0f}x | {got['rank1']:.4f} | {got['mAP']:.4f} |")


if __name__ == "__main__":
    main()
