"""Inter-channel pseudo-label refinement (docs/methods.md, CHCR: D, the inter-channel refinement), as pure
functions on label arrays.

Each visible image also has three single-channel views (R, G, B replicated to three channels). Each view
is clustered like the main features; a visible sample's main pseudo-label is *reliable* when the channel
clusterings agree with it, and is dropped for the epoch (label -1) otherwise. Infrared samples keep
their labels.

Agreement is judged on the **candidate** samples only (the visible ones), so a cross-modality merge of
the hierarchy, which adds infrared members to a visible cluster, does not count as disagreement.

* **strict (D1):** for every channel c, i's channel-c cluster must be non-outlier and its unique
  plurality main label (over the candidates in it that have a main label) must be i's own. A tie has no
  plurality and counts as disagreement.
* **soft (D2):** J_c(i) = |S(i) ∩ S_c(i)| / |S(i) ∪ S_c(i)|, with S(i) the candidates of i's main cluster
  and S_c(i) those of its channel-c cluster, both over the candidates labelled in both clusterings;
  J_c(i) = 0 when i is a channel-c outlier. Keep i when the mean over channels is >= the threshold.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RULES = ("none", "strict", "soft")


def _pair_codes(main: np.ndarray, channel: np.ndarray) -> tuple[np.ndarray, int]:
    base = int(main.max(initial=-1)) + 2
    return (channel.astype(np.int64) + 1) * base + (main.astype(np.int64) + 1), base


def plurality_main_label(main: np.ndarray, channel: np.ndarray, valid: np.ndarray) -> dict[int, int]:
    """For each channel cluster, the main label held by most of its ``valid`` members, when unique.

    Args:
        main, channel: [N] labels (-1 = outlier) of the two clusterings.
        valid: [N] bool, the samples that vote (candidates with a main and a channel label).
    Returns:
        ``{channel cluster: main label}``; clusters whose top count is tied are absent.
    """
    codes, base = _pair_codes(main[valid], channel[valid])
    pairs, counts = np.unique(codes, return_counts=True)
    out: dict[int, int] = {}
    best: dict[int, tuple[int, bool]] = {}
    for code, n in zip(pairs.tolist(), counts.tolist()):
        q, y = code // base - 1, code % base - 1
        top = best.get(q)
        if top is None or n > top[0]:
            best[q] = (n, True)
            out[q] = y
        elif n == top[0]:
            best[q] = (n, False)
    return {q: y for q, y in out.items() if best[q][1]}


def strict_agreement(main: np.ndarray, channels: Sequence[np.ndarray], candidates: np.ndarray) -> np.ndarray:
    """[N] bool: candidates with a main label whose every channel cluster maps to it (rule D1)."""
    main = np.asarray(main)
    candidates = np.asarray(candidates, dtype=bool)
    keep = candidates & (main >= 0)
    for channel in channels:
        channel = np.asarray(channel)
        valid = candidates & (main >= 0) & (channel >= 0)
        plurality = plurality_main_label(main, channel, valid)
        mapped = np.array([plurality.get(int(q), -2) for q in channel], dtype=np.int64)
        keep &= (channel >= 0) & (mapped == main)
    return keep


def channel_overlap(main: np.ndarray, channel: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """[N] float: J_c(i) of rule D2 for candidates labelled in both clusterings, else 0."""
    main, channel = np.asarray(main), np.asarray(channel)
    valid = np.asarray(candidates, dtype=bool) & (main >= 0) & (channel >= 0)
    out = np.zeros(len(main), dtype=np.float64)
    if not valid.any():
        return out
    m, c = main[valid], channel[valid]
    codes, _ = _pair_codes(m, c)
    _, pair_inv, pair_n = np.unique(codes, return_inverse=True, return_counts=True)
    _, main_inv, main_n = np.unique(m, return_inverse=True, return_counts=True)
    _, chan_inv, chan_n = np.unique(c, return_inverse=True, return_counts=True)
    inter = pair_n[pair_inv]
    out[valid] = inter / (main_n[main_inv] + chan_n[chan_inv] - inter)
    return out


def soft_agreement(main: np.ndarray, channels: Sequence[np.ndarray], candidates: np.ndarray,
                   threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Rule D2: ([N] bool keep, [N] mean overlap) for the candidates with a main label."""
    main = np.asarray(main)
    candidates = np.asarray(candidates, dtype=bool)
    score = np.mean([channel_overlap(main, ch, candidates) for ch in channels], axis=0)
    keep = candidates & (main >= 0) & (score >= threshold)
    return keep, score


@dataclass
class RefineResult:
    """Output of :func:`refine_labels`.

    Attributes:
        labels: [N] main labels with the unreliable candidates set to -1 (ids not renumbered).
        dropped: [N] bool, the candidates that lost their label.
        drop_rate: dropped / candidates that had a main label (0 when there were none).
    """

    labels: np.ndarray
    dropped: np.ndarray
    drop_rate: float


def refine_labels(main: np.ndarray, channels: Sequence[np.ndarray], candidates: np.ndarray, *, rule: str,
                  threshold: float = 0.5) -> RefineResult:
    """Drop the candidates' main labels that the channel clusterings do not confirm.

    Args:
        main: [N] main pseudo-labels (-1 = outlier).
        channels: one [N] label vector per channel view (rows of non-candidates are ignored).
        candidates: [N] bool, the samples under test (the visible ones).
        rule: ``none``, ``strict`` or ``soft``.
    """
    if rule not in RULES:
        raise ValueError(f"refinement rule must be one of {RULES}, got {rule!r}")
    main = np.asarray(main, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=bool)
    tested = candidates & (main >= 0)
    if rule == "none" or not channels:
        keep = tested
    elif rule == "strict":
        keep = strict_agreement(main, channels, candidates)
    else:
        keep, _ = soft_agreement(main, channels, candidates, threshold)
    dropped = tested & ~keep
    labels = np.where(dropped, -1, main)
    rate = float(dropped.sum() / tested.sum()) if tested.any() else 0.0
    return RefineResult(labels, dropped, rate)
