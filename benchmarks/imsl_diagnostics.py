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

With ``--clustering RUN`` it instead restores a finished IMSL run (or, with ``--untrained``, its randomly
initialised network), extracts the training set's image features f and mask features g, and scores MMC
on f, on g and on ``L2norm([f, w * g])`` for each ``--weights`` w (``method_args.cluster_shape_weight``)
against the hidden identities: ARI, the precision of the cross-modality pairs the clusters make, and the
cross-modality rank-1 of the features themselves (nearest training sample of the other modality). The
``shape-link`` rows are ``method_args.modality_link: shape`` (k-means within each modality on f, clusters
linked by their g centroids) for 1, 3 and 10 matching rounds, with the link precision (the two linked
clusters have the same majority identity) next to the precision of a random partner. With ``--untrained``
and no RUN it builds the network from the default config (``--set`` overrides):

    .venv/bin/python benchmarks/imsl_diagnostics.py --clustering runs/bench-synthetic/synthetic-standard/imsl/seed0 \
        [--untrained] [--weights 1 2 4 8]
    .venv/bin/python benchmarks/imsl_diagnostics.py --clustering --untrained --set dataset_args.preset=standard
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


def link_precision(result, truth: np.ndarray) -> dict[str, float]:
    """Share of the links whose two clusters have the same majority identity, and that share for a random
    partner of the linked cluster's modality (mean over the links)."""
    within, owner = result.within, result.cluster_modality
    major = np.array([np.bincount(truth[within == k]).argmax() for k in range(len(owner))])
    if not result.links:
        return {"link_precision": float("nan"), "link_precision_chance": float("nan")}
    hits = [major[lk.anchor] == major[lk.other] for lk in result.links]
    chance = [np.mean(major[owner == lk.modality] == major[lk.anchor]) for lk in result.links]
    return {"link_precision": float(np.mean(hits)), "link_precision_chance": float(np.mean(chance))}


def clustering_scores(run: Path | None, weights: list[float], untrained: bool = False,
                      overrides: list[str] | None = None) -> dict[str, dict[str, float]]:
    """MMC of the training set on image, mask and combined features of one run's model (see the docstring)."""
    import torch
    import torch.nn.functional as F

    from reidkit.engine.diagnostics import label_diagnostics
    from reidkit.engine.run import build_method, load_dataset, resolve_run_config, restore_checkpoint
    from reidkit.engine.trainer import Trainer
    from reidkit_methods.imsl.link import linked_clusters
    from reidkit_methods.imsl.mmc import mmc

    device = torch.device("cpu")
    if run is not None:
        restored = restore_checkpoint(run / "checkpoints" / "last.pt", overrides=overrides or [], device="cpu",
                                      load_weights=not untrained)
        cfg, dataset, method = restored.cfg, restored.dataset, restored.method
    else:
        cfg = resolve_run_config("imsl", overrides=overrides or [])
        dataset = load_dataset(cfg)
        method = build_method(cfg, dataset, device)
    ctx = Trainer(method, dataset, cfg, device=device).epoch_context(0)
    # the hidden identities, read from the records as the engine's diagnostics do (never fed to the method)
    truth = np.array([s.person_id for s in dataset.train], dtype=np.int64)
    modality = np.asarray(ctx.modality_ids)
    image, mask = ctx.features().float(), ctx.extract(source="mask").float()

    def cross_rank1(x: torch.Tensor) -> float:
        x = F.normalize(x, dim=1)
        hits = []
        for m in np.unique(modality):
            q, g = np.flatnonzero(modality == m), np.flatnonzero(modality != m)
            nearest = (x[q] @ x[g].T).argmax(dim=1).numpy()
            hits.append(truth[g][nearest] == truth[q])
        return float(np.concatenate(hits).mean())

    inputs = {"image": image, "mask": mask}
    inputs.update({f"image+{w:g}*mask": torch.cat([image, w * mask], dim=1) for w in weights})
    out = {}
    for name, x in inputs.items():
        labels, _ = mmc(F.normalize(x, dim=1), modality, method.k,
                        iterations=cfg.method_args.kmeans_iterations, generator=np.random.default_rng(0))
        diag = label_diagnostics(labels.numpy(), truth, modality)  # MMC leaves no outlier: ARI over all
        out[name] = {"ari": diag["label_ari"], "cross_pair_precision": diag["cross_pair_precision"],
                     "cross_rank1_train": cross_rank1(x)}
    for rounds in (1, 3, 10):
        linked = linked_clusters(image, mask, modality, method.k, iterations=cfg.method_args.kmeans_iterations,
                                 rounds=rounds, generator=np.random.default_rng(0))
        diag = label_diagnostics(linked.labels.numpy(), truth, modality)
        out[f"shape-link, {rounds} round(s)"] = {"ari": diag["label_ari"],
                                                 "cross_pair_precision": diag["cross_pair_precision"],
                                                 "cross_rank1_train": float("nan"), "links": len(linked.links),
                                                 **link_precision(linked, truth)}
    out["chance_precision"] = {"value": 1.0 / len(np.unique(truth))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, nargs="?", help="a synthetic-ablations benchmark folder")
    ap.add_argument("--clustering", nargs="?", const="", metavar="RUN",
                    help="score MMC and the shape link on image / mask features of RUN (no RUN: --untrained)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="with --clustering: overrides")
    ap.add_argument("--untrained", action="store_true", help="with --clustering: the untrained network")
    ap.add_argument("--weights", type=float, nargs="*", default=[1.0, 2.0, 4.0, 8.0])
    ap.add_argument("--epochs", type=int, nargs="*", default=[0, 2, 4, 6, 8, 10, 12, 14])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), help="IMSL variants to show")
    ap.add_argument("--dataset", help="only this dataset of the folder (e.g. standard)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.clustering is not None:
        if not args.clustering and not args.untrained:
            ap.error("--clustering without a RUN needs --untrained")
        run = Path(args.clustering) if args.clustering else None
        scores = clustering_scores(run, args.weights, args.untrained, args.set)
        print("| clustered on | ARI | cross-modality pair precision | cross-modality rank-1 (train) | links | "
              "link precision (chance) |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, r in scores.items():
            if name != "chance_precision":
                link = (f"{r['links']} | {r['link_precision']:.3f} ({r['link_precision_chance']:.3f})"
                        if "links" in r else "- | -")
                print(f"| {name} | {r['ari']:.3f} | {r['cross_pair_precision']:.3f} | {r['cross_rank1_train']:.3f} | "
                      f"{link} |")
        print(f"chance precision: {scores['chance_precision']['value']:.4f}")
        if args.json:
            args.json.write_text(json.dumps(scores, indent=2) + "\n")
        return 0
    if args.folder is None:
        ap.error("give a benchmark folder, or --clustering RUN")
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
