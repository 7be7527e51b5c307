"""k-means (Lloyd) with a pluggable centroid update, in torch on the features' device.

The loop alternates **assign** (each row to its nearest centroid by Euclidean distance, ties to the
lowest index) and **update** (new centroids from the assignment). The update is a function you can
replace, which is how modality-aware variants are built on this primitive::

    CentroidUpdate = Callable[[Tensor, Tensor, int], tuple[Tensor, Tensor]]
    #   (features [N, D], labels [N] int64 in [0, K), K) -> (centroids [K, D], present [K] bool)

``present[k]`` says whether cluster k still has members; with ``drop_empty=True`` (the default) empty
clusters are removed and the labels renumbered, so K can shrink. Example, IMSL's modality mean
clustering (docs/methods.md, IMSL: MMC: the centroid is the unweighted mean of the cluster's per-modality means),
with ``modality_ids`` [N] captured by the closure::

    from reidkit.cluster import kmeans, modality_centroids

    def modality_mean(features, labels, k):
        means, has = modality_centroids(features, labels, modality_ids, k, num_modalities=3,
                                        normalize=False)                      # [K, M, D], [K, M]
        centroids = (means * has.unsqueeze(-1)).sum(1) / has.sum(1, keepdim=True).clamp(min=1)
        return centroids, has.any(1)

    result = kmeans(features, 200, iterations=5, init=initial_centroids, update=modality_mean)

``backend="faiss"`` runs ``faiss.Kmeans`` instead (plain mean update only; its own initialisation).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from reidkit.distributed import on_rank0

from .centroids import cluster_centroids

log = logging.getLogger(__name__)

CentroidUpdate = Callable[[Tensor, Tensor, int], "tuple[Tensor, Tensor]"]


@dataclass(frozen=True)
class KMeansResult:
    """labels: [N] int64 in [0, K); centroids: [K, D] consistent with the labels (the last update
    after the last assignment); iterations: (update, assign) rounds run after the initial assignment;
    converged: the last assignment changed no label."""

    labels: Tensor
    centroids: Tensor
    iterations: int
    converged: bool


def mean_update(features: Tensor, labels: Tensor, num_clusters: int) -> tuple[Tensor, Tensor]:
    """The plain k-means update: each centroid is the mean of its members ([K, D], present [K])."""
    centroids = cluster_centroids(features, labels, num_clusters, normalize=False)
    present = torch.bincount(labels, minlength=num_clusters) > 0
    return centroids, present


def assign(features: Tensor, centroids: Tensor, chunk: int = 8192) -> Tensor:
    """[N] index of the nearest centroid by Euclidean distance (ties: the lowest index)."""
    c_sq = (centroids * centroids).sum(dim=1)
    out = [(c_sq.unsqueeze(0) - 2.0 * features[s:s + chunk] @ centroids.T).argmin(dim=1)
           for s in range(0, features.shape[0], chunk)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=features.device)


@on_rank0  # distributed runs: computed once on rank 0, the result sent to every rank
def kmeans(features, k: int, *, iterations: int = 20, init: str | Tensor = "k-means++",
           update: CentroidUpdate = mean_update, drop_empty: bool = True, seed: int | None = 0,
           backend: str = "torch") -> KMeansResult:
    """Cluster ``features`` [N, D] into at most ``k`` clusters.

    Args:
        k: number of centroids (capped at N).
        iterations: rounds of (update, assign) after the initial assignment, fewer if an assignment
            changes no label; one last update follows, so ``iterations + 1`` assignments and updates
            run in all and the returned centroids are the update of the returned labels.
        init: ``"k-means++"``, ``"random"`` (k distinct rows) or a [k, D] tensor of initial centroids.
        update: the centroid update (module docstring); :func:`mean_update` by default.
        drop_empty: remove clusters the update reports empty (K shrinks) instead of keeping their
            previous centroid.
        seed: seeds the initialisation (``None``: torch's global generator).
        backend: ``"torch"`` or ``"faiss"`` (mean update only).
    """
    x = torch.from_numpy(np.ascontiguousarray(features)) if isinstance(features, np.ndarray) else features
    x = x.detach().float()
    n = x.shape[0]
    if n == 0 or k < 1:
        raise ValueError(f"need N >= 1 rows and k >= 1, got N={n}, k={k}")
    if backend == "faiss":
        if update is not mean_update:
            raise ValueError("backend='faiss' supports only the mean update; use backend='torch'")
        return _faiss_kmeans(x, min(k, n), iterations, seed)
    if backend != "torch":
        raise ValueError(f"backend must be 'torch' or 'faiss', got {backend!r}")
    generator = torch.Generator(device="cpu")
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    centroids = _initial_centroids(x, min(k, n), init, generator)
    labels = assign(x, centroids)
    converged = False
    rounds = 0
    for rounds in range(1, iterations + 1):
        centroids, labels = _apply_update(x, labels, centroids, update, drop_empty)
        new_labels = assign(x, centroids)
        converged = bool(torch.equal(new_labels, labels))
        labels = new_labels
        if converged:
            break
    centroids, labels = _apply_update(x, labels, centroids, update, drop_empty)
    return KMeansResult(labels, centroids, rounds, converged)


def _apply_update(x: Tensor, labels: Tensor, centroids: Tensor, update: CentroidUpdate,
                  drop_empty: bool) -> tuple[Tensor, Tensor]:
    k = centroids.shape[0]
    new, present = update(x, labels, k)
    if new.shape != centroids.shape or present.shape != (k,):
        raise ValueError(f"update returned centroids {tuple(new.shape)} and present {tuple(present.shape)}; "
                         f"expected {tuple(centroids.shape)} and ({k},)")
    present = present.to(torch.bool)
    if not drop_empty:
        return torch.where(present.unsqueeze(1), new, centroids), labels
    new_id = torch.cumsum(present.long(), 0) - 1
    return new[present], new_id[labels]


def _initial_centroids(x: Tensor, k: int, init: str | Tensor, generator: torch.Generator) -> Tensor:
    if isinstance(init, Tensor):
        if init.dim() != 2 or init.shape[1] != x.shape[1]:
            raise ValueError(f"init must be [k, {x.shape[1]}], got {tuple(init.shape)}")
        return init.detach().to(device=x.device, dtype=x.dtype).clone()
    n = x.shape[0]
    if init == "random":
        rows = torch.randperm(n, generator=generator)[:k].to(x.device)
        return x[rows].clone()
    if init != "k-means++":
        raise ValueError(f"init must be 'k-means++', 'random' or a tensor, got {init!r}")
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    sq = (x * x).sum(1)
    closest = (sq + sq[first] - 2.0 * (x @ x[first])).clamp(min=0)
    for _ in range(1, k):
        weights = closest.cpu().double()
        pick = int(torch.multinomial(weights, 1, generator=generator)) if float(weights.sum()) > 0 else \
            int(torch.randint(n, (1,), generator=generator))
        chosen.append(pick)
        closest = torch.minimum(closest, (sq + sq[pick] - 2.0 * (x @ x[pick])).clamp(min=0))
    return x[torch.as_tensor(chosen, device=x.device)].clone()


def _faiss_kmeans(x: Tensor, k: int, iterations: int, seed: int | None) -> KMeansResult:
    import faiss

    xn = np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
    km = faiss.Kmeans(xn.shape[1], k, niter=iterations, seed=1234 if seed is None else seed,
                      gpu=faiss.get_num_gpus() > 0, verbose=False)
    km.train(xn)
    _, labels = km.index.search(xn, 1)
    centroids = torch.from_numpy(km.centroids).to(x.device)
    labels_t = torch.from_numpy(labels[:, 0].astype(np.int64)).to(x.device)
    return KMeansResult(labels_t, centroids, iterations, False)
