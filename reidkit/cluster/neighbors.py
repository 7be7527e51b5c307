"""The types every kNN search shares: the :class:`Neighbors` lists it returns and :func:`as_features`, the
check of its input (an [N, D] float32 matrix of L2-normalised rows).

A module of its own so that the exact searches (:mod:`reidkit.cluster.knn`) and the faiss indexes
(:mod:`reidkit.cluster.ann`) both build on it without importing each other.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class Neighbors(NamedTuple):
    """Sorted neighbour lists. indices: [N, k] int64; similarities: [N, k] float32 inner products,
    non-increasing along each row."""

    indices: np.ndarray
    similarities: np.ndarray


def as_features(features, *, device: torch.device | str | None = None, check_norm: bool = True) -> Tensor:
    """[N, D] float32 tensor view of ``features`` (torch tensor or numpy array), on ``device`` if given.

    Raises ValueError for a wrong shape, non-finite values or rows that are not L2-normalised (the
    lineage's distances assume unit rows). No copy is made for a float32 tensor/array already in place.
    """
    x = torch.from_numpy(np.ascontiguousarray(features)) if isinstance(features, np.ndarray) else features
    if not isinstance(x, Tensor):
        raise TypeError(f"features must be a torch.Tensor or numpy.ndarray, got {type(features).__name__}")
    if x.dim() != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"features must have shape [N, D] with N, D >= 1, got {tuple(x.shape)}")
    x = x.detach().to(device=device if device is not None else x.device, dtype=torch.float32).contiguous()
    if check_norm:
        norms = torch.linalg.vector_norm(x, dim=1)
        if not bool(torch.isfinite(norms).all()):
            raise ValueError("features contain NaN or infinite values")
        worst = float((norms - 1).abs().max())
        if worst > 1e-3:
            raise ValueError(f"features must be L2-normalised rows (largest |norm - 1| = {worst:.3g}); "
                             "use torch.nn.functional.normalize(features, dim=1)")
    return x
