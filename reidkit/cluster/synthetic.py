"""Structured synthetic embeddings for testing and benchmarking the clustering code.

Real re-ID embeddings are not isotropic noise around identity centres: they share nuisance directions
(pose, light, background) across identities, each modality is shifted as a whole, identities are
unevenly sized and some images belong to nobody else in the set. :func:`structured_features` draws
L2-normalised float32 features with exactly these ingredients, so that DBSCAN on the k-reciprocal
Jaccard distance has real decisions to make (split modalities, merged identities, outliers) and the
neighbour lists have realistic spacing. It is deterministic in ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticFeatures:
    """Features and the truth they were drawn from.

    Attributes:
        features: [N, D] float32, L2-normalised rows.
        identities: [N] int64 identity of each row; outliers have identities of their own (>= the
            number of regular identities), shared with at most one other row.
        modalities: [N] int64 modality index of each row.
    """

    features: np.ndarray
    identities: np.ndarray
    modalities: np.ndarray


def structured_features(n: int, dim: int = 2048, *, identities: int = 395,
                        modality_shares: tuple[float, ...] = (0.65, 0.35), modality_shift: float = 0.7,
                        nuisance: float = 0.8, nuisance_rank: int = 48, noise: float = 0.9,
                        outlier_fraction: float = 0.04, seed: int = 0, chunk: int = 8192) -> SyntheticFeatures:
    """Draw ``n`` features of dimension ``dim`` shaped like a cross-modality re-ID training set.

    Each row is ``normalise(centre[id] + shift[modality] + jitter[id, modality] + W z + noise)``: unit
    identity centres, a common shift per modality of norm ``modality_shift``, a per-(identity, modality)
    jitter, a low-rank nuisance ``W z`` shared by all identities (rank ``nuisance_rank``, norm about
    ``nuisance``) and isotropic noise of norm about ``noise``. Identity sizes are log-normal. A fraction
    ``outlier_fraction`` of rows come from singleton or paired identities. Defaults give, with SYSU-MM01's
    sizes (395 identities; visible:infrared about 65:35), a few hundred clusters, some of them
    single-modality, and some outliers.

    Memory: the output plus ``chunk`` x ``dim`` float64 temporaries.
    """
    if n < 1 or dim < 2:
        raise ValueError(f"need n >= 1 and dim >= 2, got n={n}, dim={dim}")
    rng = np.random.default_rng(seed)
    shares = np.asarray(modality_shares, dtype=np.float64)
    shares = shares / shares.sum()
    n_outliers = round(outlier_fraction * n)
    n_regular = n - n_outliers

    sizes = rng.lognormal(mean=0.0, sigma=0.5, size=identities)
    ident = rng.choice(identities, size=n_regular, p=sizes / sizes.sum())
    # outliers: identities of one or two rows each, numbered after the regular ones
    extra = identities + np.arange(n_outliers) // 2 if n_outliers else np.zeros(0, dtype=np.int64)
    ident = np.concatenate([ident, extra]).astype(np.int64)
    modal = rng.choice(len(shares), size=n, p=shares).astype(np.int64)
    order = rng.permutation(n)
    ident, modal = ident[order], modal[order]

    n_ids = int(ident.max()) + 1
    centres = _unit_rows(rng, n_ids, dim)
    shifts = _unit_rows(rng, len(shares), dim) * modality_shift
    basis = rng.standard_normal((nuisance_rank, dim)) / np.sqrt(nuisance_rank * dim)
    jitter_scale = 0.35
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        i, m = ident[rows], modal[rows]
        x = centres[i] + shifts[m]
        # per-(identity, modality) jitter, reproducible without storing ids x modalities x dim
        x += _keyed_rows(seed, i * len(shares) + m, dim) * jitter_scale
        x += (rng.standard_normal((len(i), nuisance_rank)) @ basis) * nuisance
        x += rng.standard_normal((len(i), dim)) * (noise / np.sqrt(dim))
        out[rows] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return SyntheticFeatures(out, ident, modal)


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _keyed_rows(seed: int, keys: np.ndarray, dim: int) -> np.ndarray:
    """[len(keys), dim] unit-norm rows, each a deterministic function of (seed, key)."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    rows = np.stack([_unit_rows(np.random.default_rng([seed, 7919, int(k)]), 1, dim)[0] for k in uniq])
    return rows[inverse]
