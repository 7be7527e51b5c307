"""Frozen-feature cross-modality scores of backbone initialisations (no training), as the field measures
ImageNet weights before a method starts.

    python benchmarks/pretrain_frozen.py none synthetic-pretrained [more weights files ...] \
        --presets standard standard-nir --world-seed 0 --json benchmarks/pretraining/frozen-test.json

A ``.ckpt`` file (an unfinished ``reidkit pretrain`` run) is scored through its backbone.
``--world-seed 0`` scores the benchmark's own test split (seed 0); any other seed scores a world the
benchmark never uses, which is where pretraining recipes are compared (docs/pretraining.md). Prints a
markdown table (R1 / mAP in %, both search directions and their mean). ``--centre-modalities`` subtracts
each modality's mean feature first (a diagnostic of the modality offset, not how a method ranks).

``--first-clusters`` adds what a clustering method sees at its first epoch: the frozen features of the
world's *training* split clustered as IMSL's MMC does (K = 1.2 x identities, 5 and 20 k-means iterations,
3 initialisation seeds; 20 iterations also from a k-means++ start) and as CHCR's joint Jaccard + DBSCAN
does (its defaults), scored against the hidden identities by ARI and cross-pair precision (the share of
visible / infrared pairs within a cluster that show one person; ``reidkit.engine.diagnostics``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _from_checkpoint(path: str) -> str:
    """The backbone of an unfinished pretraining run's checkpoint, written as a weights file beside it."""
    import torch

    from reidkit.engine.checkpoint import load_checkpoint
    from reidkit.pretrain.train import backbone_tensors

    state = load_checkpoint(path)
    out = str(Path(path).with_suffix(f".step{state['step']}.pth"))
    torch.save(backbone_tensors(state["model"], prefix="backbone."), out)
    return out


def first_clusters(weights: str, dataset) -> dict[str, dict[str, float]]:
    """ARI and cross-pair precision of MMC's and CHCR's first clustering of ``dataset``'s training split."""
    from reidkit.pretrain.frozen import frozen_features

    feats = frozen_features(weights, dataset, dataset.train)
    truth = np.array([s.person_id for s in dataset.train])
    modality = np.unique([s.modality for s in dataset.train], return_inverse=True)[1]
    return cluster_scores(feats, truth, modality)


def cluster_scores(feats, truth: np.ndarray, modality: np.ndarray) -> dict[str, dict[str, float]]:
    """``{"mmc-5", "mmc-20", "mmc-20-kmeans++", "chcr"}`` -> label ARI and cross-pair precision of that
    clustering of ``feats`` (L2-normalised [N, D]): MMC with K = 1.2 x identities (mean of 3 initialisation
    seeds; the official start, and k-means++ for the last) and CHCR's joint
    Jaccard + DBSCAN at its default settings (with its share of outliers)."""
    from reidkit.engine.diagnostics import label_diagnostics
    from reidkit_methods.chcr.clustering import joint_cluster
    from reidkit_methods.chcr.config import CHCRConfig
    from reidkit_methods.imsl.mmc import mmc

    keys = ("label_ari", "cross_pair_precision")
    k = round(1.2 * len(np.unique(truth)))
    out = {}
    for name, iterations, init in (("mmc-5", 5, "official"), ("mmc-20", 20, "official"),
                                   ("mmc-20-kmeans++", 20, "k-means++")):
        runs = [label_diagnostics(mmc(feats, modality, k, iterations=iterations, init=init,
                                      generator=np.random.default_rng(seed))[0].numpy(), truth, modality)
                for seed in range(3)]
        out[name] = {key: float(np.mean([r[key] for r in runs])) for key in keys}
    c = CHCRConfig()
    labels = joint_cluster(feats, eps=c.eps, min_samples=c.min_samples, k1=c.k1, k2=c.k2).labels
    d = label_diagnostics(labels, truth, modality)
    out["chcr"] = {key: d[key] for key in keys} | {"outliers": float(np.mean(labels < 0))}
    return out


def main(argv: list[str] | None = None) -> int:
    from reidkit.data.datasets.synthetic import SyntheticDataset
    from reidkit.data.synthetic import cached_root
    from reidkit.pretrain.frozen import frozen_scores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="model.weights values: none, synthetic-pretrained, files")
    parser.add_argument("--presets", nargs="+", default=["standard", "standard-nir"])
    parser.add_argument("--world-seed", type=int, default=0)
    parser.add_argument("--json", help="also write the scores here")
    parser.add_argument("--centre-modalities", action="store_true",
                        help="diagnostic: subtract each modality's mean feature before ranking")
    parser.add_argument("--first-clusters", action="store_true",
                        help="also cluster the training split as MMC and CHCR do at their first epoch")
    args = parser.parse_args(argv)

    args.weights = [_from_checkpoint(w) if w.endswith(".ckpt") else w for w in args.weights]
    rows, doc = [], {"world_seed": args.world_seed, "centre_modalities": args.centre_modalities, "scores": {}}
    for preset in args.presets:
        dataset = SyntheticDataset.from_root(cached_root(preset, seed=args.world_seed))
        for weights in args.weights:
            t0 = time.perf_counter()
            scores = frozen_scores(weights, dataset, centre_modalities=args.centre_modalities)
            doc["scores"].setdefault(preset, {})[weights] = {
                name: {k: r[k] for k in ("rank1", "mAP", "mINP")} for name, r in scores.items()}
            if args.first_clusters:
                clusters = first_clusters(weights, dataset)
                doc.setdefault("first_clusters", {}).setdefault(preset, {})[weights] = clusters
                print(f"{preset} {weights}: first clusters " + ", ".join(
                    f"{name} ARI {c['label_ari']:.2f} xpp {c['cross_pair_precision']:.2f}"
                    for name, c in clusters.items()), file=sys.stderr)
            cells = [f"{100 * r['rank1']:.1f} / {100 * r['mAP']:.1f}" for r in scores.values()]
            mean_map = 100 * np.mean([r["mAP"] for r in scores.values()])
            rows.append(f"| {preset} | `{weights}` | {' | '.join(cells)} | {mean_map:.1f} |")
            print(f"{preset} {weights}: mean mAP {mean_map:.1f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
            names = list(scores)
    print(f"| preset (seed {args.world_seed}) | weights | " + " | ".join(f"{n} R1 / mAP" for n in names)
          + " | mean mAP |")
    print("|---|---|" + "---:|" * (len(names) + 1))
    print("\n".join(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
