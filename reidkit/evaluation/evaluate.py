"""evaluate(): one protocol, every trial, averaged.

Query features are extracted once; the gallery features once for the union of all trials' galleries
(SYSU-MM01's ten single-shot galleries share most identities but few images, so the union is small).
Distance = negative inner product of the (L2-normalised) features, as in the AGW code family; the ranking
equals Euclidean ranking for unit vectors. Each trial is scored by ``rank_metrics`` with the protocol's
exclusion mask and CMC mode, and the scores are averaged over trials (the official 10-trial mean).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from reidkit.data.datasets.base import Protocol
from reidkit.data.records import Sample
from reidkit.evaluation.protocols import ignore_mask
from reidkit.evaluation.rank import rank_metrics

log = logging.getLogger(__name__)

FeaturesFn = Callable[[Sequence[Sample]], torch.Tensor]
CMC_LENGTH = 20
SCORES = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


def _features(features_fn: FeaturesFn, samples: Sequence[Sample], what: str) -> torch.Tensor:
    feats = features_fn(samples)
    if not isinstance(feats, torch.Tensor):
        feats = torch.as_tensor(np.asarray(feats))
    if feats.ndim != 2 or feats.shape[0] != len(samples):
        raise ValueError(f"features_fn returned shape {tuple(feats.shape)} for {len(samples)} {what} "
                         "samples; expected [n, D]")
    return feats.detach().to("cpu", torch.float32)


def evaluate(features_fn: FeaturesFn, protocol: Protocol, *, max_trials: int | None = None) -> dict[str, Any]:
    """Score ``protocol`` with the features ``features_fn(samples) -> [n, D]`` (L2-normalised).

    Returns ``{"rank1", "rank5", "rank10", "rank20", "mAP", "mINP"}`` (fractions, means over trials),
    ``"cmc"`` (mean curve, 20 floats), ``"trials"`` (how many were averaged) and the protocol's ``info``
    (e.g. which gallery sampler produced the trials).
    """
    trials = protocol.trials if max_trials is None else protocol.trials[:max(1, max_trials)]
    used = np.unique(np.concatenate(trials)) if trials else np.zeros(0, np.int64)
    gallery_union = [protocol.gallery_pool[i] for i in used]
    query_feats = _features(features_fn, protocol.query, "query")
    gallery_feats = _features(features_fn, gallery_union, "gallery")
    query_ids = np.fromiter((s.person_id for s in protocol.query), np.int64, len(protocol.query))

    per_trial = []
    for t, positions in enumerate(trials):
        where = np.searchsorted(used, positions)
        gallery = [gallery_union[i] for i in where]
        dist = -(query_feats @ gallery_feats[torch.as_tensor(where)].T).numpy()
        ignore = None if protocol.exclusion == "none" else ignore_mask(protocol.exclusion, protocol.query,
                                                                       gallery)
        gallery_ids = np.fromiter((s.person_id for s in gallery), np.int64, len(gallery))
        result = rank_metrics(dist, query_ids, gallery_ids, ignore=ignore, dedup_cmc=protocol.dedup_cmc,
                              max_rank=CMC_LENGTH)
        log.debug("%s trial %d: rank1 %.4f mAP %.4f (%d of %d queries valid)", protocol.name, t,
                  result["rank1"], result["mAP"], result["num_valid"], result["num_queries"])
        per_trial.append(result)

    out: dict[str, Any] = {k: float(np.mean([r[k] for r in per_trial])) for k in SCORES}
    out["cmc"] = [float(v) for v in np.mean([r["cmc"] for r in per_trial], axis=0)]
    out["trials"] = len(per_trial)
    out.update(protocol.info)
    return out
