"""A dense re-implementation of the k-reciprocal Jaccard + DBSCAN lineage (SpCL / OpenUnReID /
ClusterContrast: ``clustercontrast/utils/faiss_rerank.py`` in github.com/alibaba/cluster-contrast-reid),
kept as the yardstick for ``reidkit.cluster``, plus tests that pin the reference itself.

It is written from the algorithm's description, step for step as the peers run it: an exact kNN search
with k = k1 (so each list has k1 columns and ``[:k + 1]`` slices read k1 of them), per-row Python loops,
three dense N x N float32 matrices (encoding, query-expanded encoding, Jaccard) and
``sklearn.cluster.DBSCAN(metric="precomputed")`` on the dense result. O(N^2) memory: small N only,
and the benchmark (benchmarks/clustering.py) runs it in its own process.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import DBSCAN


def lineage_ranks(features: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """[N, k] exact float32 kNN lists by inner product (x @ x.T in chunks, then topk)."""
    f = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    out = [torch.topk(f[s:s + chunk] @ f.T, k, dim=1).indices for s in range(0, f.shape[0], chunk)]
    return torch.cat(out).numpy()


def _reciprocal(ranks: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = ranks[i, :k + 1]
    backward = ranks[forward, :k + 1]
    return forward[np.nonzero(backward == i)[0]]


def lineage_jaccard(features: np.ndarray, k1: int = 30, k2: int = 6, ranks: np.ndarray | None = None) -> np.ndarray:
    """[N, N] float32 dense k-reciprocal Jaccard distance, the lineage's way."""
    f = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    n = f.shape[0]
    ranks = lineage_ranks(features, k1) if ranks is None else ranks
    half = int(np.around(k1 / 2))
    nn_k1 = [_reciprocal(ranks, i, k1) for i in range(n)]
    nn_half = [_reciprocal(ranks, i, half) for i in range(n)]

    encoding = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        reciprocal = nn_k1[i]
        expansion = reciprocal
        for candidate in reciprocal:
            cand_set = nn_half[candidate]
            if len(np.intersect1d(cand_set, reciprocal)) > 2 / 3 * len(cand_set):
                expansion = np.append(expansion, cand_set)
        expansion = np.unique(expansion)
        dist = 2 - 2 * torch.mm(f[i].unsqueeze(0), f[expansion].t())
        encoding[i, expansion] = torch.softmax(-dist, dim=1).view(-1).numpy()
    del nn_k1, nn_half

    if k2 != 1:
        expanded = np.zeros_like(encoding)
        for i in range(n):
            expanded[i, :] = np.mean(encoding[ranks[i, :k2], :], axis=0)
        encoding = expanded
        del expanded

    inverted = [np.nonzero(encoding[:, c] != 0)[0] for c in range(n)]
    jaccard = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        overlap = np.zeros((1, n), dtype=np.float32)
        columns = np.nonzero(encoding[i, :] != 0)[0]
        for c in columns:
            rows = inverted[c]
            overlap[0, rows] = overlap[0, rows] + np.minimum(encoding[i, c], encoding[rows, c])
        jaccard[i] = 1 - overlap / (2 - overlap)
    del inverted, encoding
    jaccard[jaccard < 0] = 0.0
    return jaccard


def lineage_labels(features: np.ndarray, eps: float = 0.6, min_samples: int = 4, k1: int = 30,
                   k2: int = 6) -> np.ndarray:
    """The lineage's pseudo-labels: dense Jaccard, then DBSCAN on the precomputed matrix."""
    dist = lineage_jaccard(features, k1, k2)
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=1).fit_predict(dist)


# -- the reference itself ----------------------------------------------------------------------------------


def _line(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_reference_hand_example_two_pairs():
    # two tight pairs far apart: with k1 = 2 every point's list is {itself, its twin}, all reciprocal,
    # V = softmax over the pair, k2 = 1 (no expansion): m = sum of minima = 2 * min(w_self, w_twin)
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.995, 0.0998749, 0.0])
    c, d = np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0998749, 0.995])
    x = np.stack([a, b, c, d]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    jac = lineage_jaccard(x, k1=2, k2=1)
    s = float(x[0] @ x[1])
    w_self = 1 / (1 + np.exp(-(2 - 2 * s)))  # softmax(-dist) over (dist_self = 0, dist_twin)
    m = 2 * min(w_self, 1 - w_self)
    assert jac[0, 1] == pytest.approx(1 - m / (2 - m), abs=1e-6)
    assert jac[0, 2] == 1.0 and jac[1, 3] == 1.0  # no shared column
    np.testing.assert_allclose(np.diag(jac), 0.0, atol=1e-6)
    np.testing.assert_allclose(jac, jac.T, atol=0)  # the lineage's sums are exactly symmetric


def test_reference_rows_of_the_encoding_sum_to_one_and_distances_are_in_range():
    x = _line(60)
    jac = lineage_jaccard(x, k1=6, k2=3)
    assert jac.dtype == np.float32 and jac.shape == (60, 60)
    assert (jac >= 0).all() and (jac <= 1).all()
    np.testing.assert_allclose(np.diag(jac), 0.0, atol=1e-6)


def test_reference_labels_find_separated_groups():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((3, 16))
    x = np.concatenate([c + 0.05 * rng.standard_normal((12, 16)) for c in centres]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = lineage_labels(x, eps=0.6, min_samples=4, k1=8, k2=3)
    truth = np.repeat(np.arange(3), 12)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, labels) == 1.0
