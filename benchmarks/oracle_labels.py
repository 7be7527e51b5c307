"""Upper-bound diagnostic: train IMSL or CHCR with the hidden identities in place of their clustering.

Everything else of the method runs unchanged (memories, losses, sampler, augmentation, budget); only the
pseudo-labels are replaced, every epoch, by the training identities. The score says how much of the gap to
the supervised reference is the pseudo-labels' fault and how much the method's learning machinery's:

- IMSL: MMC's labels become the identities (K = the number of identities), its centroids the identities'
  modality-mean centroids; MIL's proxies, SMR's mask memory and MMRE follow from them as usual.
- CHCR: the level-1 joint clustering returns the identities; run it with ``hierarchy=none`` and
  ``refinement=none`` (the baseline rung): with perfect labels the merge and the filter have nothing to do.
  ``--within-modality`` splits every identity into one cluster per modality instead: perfect clusters
  inside each modality and no cross-modality link, which is what CHCR's baseline rung aims for on its own
  (its joint clustering never mixes the modalities). The distance between the two oracles is what the
  cross-modality association is worth to the method; the distance from this one down to the method's own
  labels is the within-modality clustering's share.

This is a diagnostic, never a method and never a result to compare with the others: it reads the labels
an unsupervised method must not see. The run directory is marked (``metrics.json`` ``"diagnostic"``), and
the output path should say so too (``.../<method>/oracle-labels/seed<k>`` shows as a variant in reports).

    .venv/bin/python benchmarks/oracle_labels.py imsl --output runs/oracle/synthetic-standard/imsl/oracle-labels/seed0 \\
        --set dataset_args.preset=standard --set optim.step_size=12 ...
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

MARK = "oracle pseudo-labels: the hidden training identities replace the method's clustering (benchmarks/oracle_labels.py)"
MARK_WITHIN = ("oracle pseudo-labels, split by modality: the hidden training identities, one cluster per "
               "(identity, modality), replace the method's clustering (benchmarks/oracle_labels.py)")


def oracle_imsl():
    from reidkit_methods.imsl import IMSL
    from reidkit_methods.imsl.mmc import modality_mean_centroids

    class OracleIMSL(IMSL):
        uses_labels = True

        def prepare_epoch(self, ctx):
            _, self._truth = np.unique(ctx.ground_truth(), return_inverse=True)
            return super().prepare_epoch(ctx)

        def _cluster(self, features, modality_ids, generator):
            labels = torch.as_tensor(self._truth, dtype=torch.int64, device=features.device)
            mods = torch.as_tensor(modality_ids, dtype=torch.int64, device=features.device)
            count = int(labels.max()) + 1
            return labels, modality_mean_centroids(features, labels, mods, count, int(mods.max()) + 1)[0]

    return OracleIMSL


def split_by_modality(identities: np.ndarray, modality_ids: np.ndarray) -> np.ndarray:
    """One label per (identity, modality) pair present, numbered 0..M-1: no cluster crosses modalities."""
    from reidkit.cluster import relabel

    mods = np.asarray(modality_ids, dtype=np.int64)
    return relabel(np.asarray(identities, dtype=np.int64) * (int(mods.max()) + 1) + mods)


def oracle_chcr(within_modality: bool = False):
    from reidkit_methods.chcr import CHCR
    from reidkit_methods.chcr.clustering import JointClustering

    class OracleCHCR(CHCR):
        uses_labels = True

        def prepare_epoch(self, ctx):
            if self.cfg.hierarchy != "none" or self.cfg.refinement != "none":
                raise SystemExit("the CHCR oracle runs the baseline rung: "
                                 "--set method_args.hierarchy=none --set method_args.refinement=none")
            self._truth = np.unique(ctx.ground_truth(), return_inverse=True)[1].astype(np.int64)
            return super().prepare_epoch(ctx)

        def _cluster(self, features, modality_ids):
            labels = split_by_modality(self._truth, modality_ids) if within_modality else self._truth.copy()
            return JointClustering(labels=labels, eps=float("nan"))

    return OracleCHCR


def main(argv: list[str] | None = None) -> int:
    from reidkit.engine.run import resolve_run_config, run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("method", choices=("imsl", "chcr"))
    ap.add_argument("--output", type=Path, required=True, help="run directory (say 'oracle' in it)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--within-modality", action="store_true",
                    help="chcr: one cluster per (identity, modality), so no label links the modalities")
    args = ap.parse_args(argv)
    if args.within_modality and args.method != "chcr":
        ap.error("--within-modality is for chcr (IMSL's MMC needs clusters that span the modalities)")
    cls = oracle_imsl() if args.method == "imsl" else oracle_chcr(args.within_modality)
    cfg = resolve_run_config(args.method, overrides=[*args.set, f"output={args.output}"])
    run(cfg, device=args.device, method_cls=cls)
    path = args.output / "metrics.json"
    doc = json.loads(path.read_text())
    mark = MARK_WITHIN if args.within_modality else MARK
    path.write_text(json.dumps({"diagnostic": mark, **doc}, indent=2) + "\n")
    (args.output / "DIAGNOSTIC.txt").write_text(mark + "\n")
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sys.exit(main())
