"""The executable specification of ``rank_metrics``: one query at a time, written to be obviously right.

Slow (a sort and a Python de-duplication per query); the tests hold ``rank_metrics`` equal to it and
``benchmarks/rank_metrics.py`` measures the speed-up against it. It follows the official SYSU-MM01 MATLAB
code step by step (``get_cmc_multi_cam.m``, ``get_map_multi_cam.m``): stable sort, remove the ignored
entries, de-duplicate identities keeping first occurrences for CMC, AP over the filtered list.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from reidkit.evaluation.rank import as_distance_array


def rank_metrics_reference(dist: Any, query_ids: Any, gallery_ids: Any, *, ignore: Any = None,
                           dedup_cmc: bool = False, max_rank: int = 20) -> dict[str, Any]:
    """Same contract and result as :func:`reidkit.evaluation.rank_metrics`, computed per query."""
    d = as_distance_array(dist)
    q_ids = np.asarray(query_ids).reshape(-1)
    g_ids = np.asarray(gallery_ids).reshape(-1)
    skip = None if ignore is None else np.asarray(ignore, dtype=bool)
    firsts, aps, inps = [], [], []
    for i in range(d.shape[0]):
        order = np.argsort(d[i], kind="stable")
        if skip is not None:
            order = order[~skip[i, order]]
        ranked_ids = g_ids[order]
        hit_ranks = np.flatnonzero(ranked_ids == q_ids[i]) + 1
        if hit_ranks.size == 0:
            continue  # no true match left: the query is not counted
        found = hit_ranks.size
        aps.append(np.mean(np.arange(1, found + 1) / hit_ranks))
        inps.append(found / hit_ranks[-1])
        if dedup_cmc:
            unique_ids = list(dict.fromkeys(ranked_ids.tolist()))  # stable unique
            firsts.append(unique_ids.index(q_ids[i].item()) + 1)
        else:
            firsts.append(int(hit_ranks[0]))
    if not firsts:
        raise ValueError(f"none of the {d.shape[0]} queries has a true match in its (filtered) gallery")
    first = np.asarray(firsts)
    out: dict[str, Any] = {
        "cmc": np.array([np.mean(first <= k) for k in range(1, max_rank + 1)]),
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "num_valid": len(firsts),
        "num_queries": d.shape[0],
    }
    for k in (1, 5, 10, 20):
        out[f"rank{k}"] = float(np.mean(first <= k))
    return out
