"""Training-set diagnostics of CHCR's clustering stages against the hidden identities (never fed back).

For a finished run directory (its ``config.yaml`` and ``checkpoints/last.pt``) or an untrained model, this
re-runs one ``prepare_epoch`` of the ``chcr`` method with every component switched on and reports, on the
TRAINING set:

* level 1 (joint Jaccard + DBSCAN): clusters, outliers, ARI over the clustered samples, ARI with outliers
  as singletons (the eps criterion of benchmarks/chcr.md), share of mixed clusters;
* hierarchy (cross-merge): merges, merge precision (the two merged clusters have the same majority
  identity) and the precision random pairing would give;
* refinement (strict and soft): drop rate, and how often the dropped vs the kept visible samples carry a
  wrong main label (their identity is not their cluster's majority identity): refinement helps only when
  the dropped ones are wrong more often;
* optionally an eps sweep (``--eps``) of level 1.

    python benchmarks/chcr_diagnostics.py runs/bench-ablations/synthetic-standard/chcr/full/seed0
    python benchmarks/chcr_diagnostics.py --untrained --set dataset_args.preset=standard --eps 0.4 0.5 0.6
    python benchmarks/chcr_diagnostics.py RUN --set method_args.merge_features=masks   # merges by mask centroids

Only for diagnostics: it reads the hidden identities from the dataset's records, as the engine's own
pseudo-label diagnostics do, and the stages' labels from the plan's ``details``; the method sees neither.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score


def majority_identity(labels: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """``{cluster: most frequent identity}`` over the clustered samples."""
    out = {}
    for k in np.unique(labels[labels >= 0]):
        ids, counts = np.unique(truth[labels == k], return_counts=True)
        out[int(k)] = int(ids[np.argmax(counts)])
    return out


def ari_stats(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    keep = labels >= 0
    singles = labels.copy()
    singles[~keep] = labels.max(initial=-1) + 1 + np.arange(int((~keep).sum()))
    return {"clusters": len(np.unique(labels[keep])), "outliers": float(1 - keep.mean()),
            "ari_clustered": float(adjusted_rand_score(truth[keep], labels[keep])) if keep.sum() > 1 else 0.0,
            "ari_all": float(adjusted_rand_score(truth, singles))}


def merge_stats(level1: np.ndarray, pairs, truth: np.ndarray, modality: np.ndarray, second: int) -> dict:
    major = majority_identity(level1, truth)
    hits = [major[a] == major[b] for a, b, _ in pairs]
    second_only = [k for k in major if set(modality[level1 == k]) == {second}]
    chance = [np.mean([major[c] == major[a] for c in second_only]) for a, _, _ in pairs] if second_only else []
    return {"merges": len(pairs), "merge_precision": float(np.mean(hits)) if hits else float("nan"),
            "merge_precision_chance": float(np.mean(chance)) if chance else float("nan")}


def refine_stats(main: np.ndarray, dropped: np.ndarray, truth: np.ndarray, visible: np.ndarray) -> dict:
    major = majority_identity(main, truth)
    tested = visible & (main >= 0)
    wrong = np.array([main[i] >= 0 and major[int(main[i])] != truth[i] for i in range(len(main))])
    kept = tested & ~dropped
    return {"drop_rate": float(dropped[tested].mean()) if tested.any() else 0.0,
            "wrong_among_dropped": float(wrong[dropped].mean()) if dropped.any() else float("nan"),
            "wrong_among_kept": float(wrong[kept].mean()) if kept.any() else float("nan")}


def main() -> None:
    from reidkit.engine.run import build_method, load_dataset, resolve_run_config, restore_checkpoint
    from reidkit.engine.trainer import Trainer
    from reidkit_methods.chcr.clustering import joint_cluster
    from reidkit_methods.chcr.refinement import refine_labels

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", nargs="?", help="a finished chcr run directory")
    parser.add_argument("--untrained", action="store_true", help="diagnose the randomly initialised model")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--eps", type=float, nargs="*", default=[], help="level-1 eps values to sweep")
    parser.add_argument("--k1", type=int, nargs="*", default=[], help="k1 values to sweep with --eps "
                        "(default: the run's k1)")
    args = parser.parse_args()
    # every stage runs, whatever rung the run trained, so that each one can be diagnosed
    full = ["method_args.hierarchy=cross-merge", "method_args.refinement=strict", "method_args.outliers=drop"]
    device = torch.device("cpu")
    if args.run:
        restored = restore_checkpoint(Path(args.run) / "checkpoints" / "last.pt", overrides=[*args.set, *full],
                                      device="cpu", load_weights=not args.untrained)
        cfg, dataset, method = restored.cfg, restored.dataset, restored.method
    else:
        cfg = resolve_run_config("chcr", overrides=[*args.set, *full])
        dataset = load_dataset(cfg)
        method = build_method(cfg, dataset, device)
    ctx = Trainer(method, dataset, cfg, device=device).epoch_context(0)
    truth = np.array([s.person_id for s in dataset.train], dtype=np.int64)
    modality = ctx.modality_ids
    visible = modality == dataset.modalities.index(dataset.colour_modality)
    second = 1 - dataset.modalities.index(dataset.colour_modality)
    st = method.prepare_epoch(ctx).details
    report = {"level1": ari_stats(st["level1"], truth),
              "hierarchy": {**ari_stats(st["hierarchy"], truth),
                            **merge_stats(st["level1"], st["merged_pairs"], truth, modality, second)},
              "refinement_strict": refine_stats(st["hierarchy"], st["dropped"], truth, visible)}
    soft = refine_labels(st["hierarchy"], st["channels"], visible, rule="soft", threshold=cfg.method_args.soft_threshold)
    report["refinement_soft"] = refine_stats(st["hierarchy"], soft.dropped, truth, visible)
    for k1 in args.k1 or [cfg.method_args.k1]:
        for eps in args.eps:
            labels = joint_cluster(ctx.features(), eps=eps, min_samples=cfg.method_args.min_samples,
                                   k1=k1, k2=cfg.method_args.k2).labels
            report[f"level1_k1={k1}_eps={eps}"] = ari_stats(labels, truth)
    print(json.dumps({"run": args.run, "untrained": args.untrained,
                      "method_args": dataclasses.asdict(cfg.method_args), **report}, indent=1))


if __name__ == "__main__":
    main()
