"""P x K identity samplers over a multi-modality training set.

A sampler yields ``iterations`` steps; each step is ``{modality: int64 array of training-set indices}``
holding P labels x K instances per modality, grouped label by label (K consecutive indices per label).

- :class:`PerModalityPKSampler`: every modality draws its own P labels among those present in it
  (IMSL's and ADCA's independent per-modality loaders).
- :class:`AlignedPKSampler`: the same P identities in every modality, K per modality each (supervised
  AGW style, as dc-baseline uses it).

Labels are pseudo-labels or identities; -1 (outlier, excluded) is never drawn. Labels are drawn without
replacement when enough exist (otherwise every label once, then repeats); instances without replacement
when the label has at least K samples in the modality. Steps depend only on ``(seed, epoch)`` through a
``numpy.random.Generator``. With ``world_size > 1`` every rank draws the same global step and keeps its own
contiguous share of the P labels, so the ranks' batches together equal the single-process batch.

Samplers are registered under the ``reidkit.samplers`` entry points (setup.cfg) and named by
``EpochPlan.sampler``; a plugin adds one by subclassing :class:`PKSampler` (it implements ``_step``) and
registering the class. The loader builds it as ``cls(labels, modality_ids, modalities, *, batch_size,
instances, iterations, seed, rank, world_size)``, calls ``set_epoch`` and iterates ``len(sampler)`` steps.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def _check_inputs(labels: np.ndarray, modality_ids: np.ndarray, modalities: Sequence[str], batch_size: int,
                  instances: int, iterations: int, rank: int,
                  world_size: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    modality_ids = np.asarray(modality_ids, dtype=np.int64)
    if labels.ndim != 1 or labels.shape != modality_ids.shape:
        raise ValueError(f"labels {labels.shape} and modality_ids {modality_ids.shape} must be 1-D and "
                         "equal in length")
    if not modalities:
        raise ValueError("a sampler needs at least one modality")
    if instances < 1 or batch_size < instances:
        raise ValueError(f"need 1 <= instances <= batch_size, got instances={instances}, "
                         f"batch_size={batch_size}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if world_size > batch_size // instances:
        raise ValueError(f"P = batch_size // instances = {batch_size // instances} identities per step "
                         f"cannot be shared among {world_size} ranks")
    return labels, modality_ids


def _group_by_label(labels: np.ndarray, modality_ids: np.ndarray, modality_id: int) -> dict[int, np.ndarray]:
    """``{label: sorted indices}`` of the labelled (label >= 0) samples of one modality."""
    idx = np.flatnonzero((modality_ids == modality_id) & (labels >= 0))
    order = np.argsort(labels[idx], kind="stable")
    idx = idx[order]
    keys, starts = np.unique(labels[idx], return_index=True)
    return {int(k): part for k, part in zip(keys, np.split(idx, starts[1:]))}


class PKSampler:
    """The base of every sampler: validation, per-modality label groups, epoch seeding, rank shares.

    A subclass implements ``_step(rng) -> {modality: int64 indices}`` (one step, this rank's share), drawing
    only from ``rng`` so that steps depend on ``(seed, epoch)`` alone.
    """

    def __init__(self, labels: np.ndarray, modality_ids: np.ndarray, modalities: Sequence[str], *,
                 batch_size: int, instances: int, iterations: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        labels, modality_ids = _check_inputs(labels, modality_ids, modalities, batch_size, instances,
                                             iterations, rank, world_size)
        self.modalities = tuple(modalities)
        self.batch_size = int(batch_size)
        self.instances = int(instances)
        self.num_labels_per_step = self.batch_size // self.instances  # P
        self.iterations = int(iterations)
        self.seed = int(seed)
        self.epoch = 0
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.groups: dict[str, dict[int, np.ndarray]] = {}
        for i, modality in enumerate(self.modalities):
            groups = _group_by_label(labels, modality_ids, i)
            if not groups:
                raise ValueError(f"no labelled sample (label >= 0) in modality {modality!r}: nothing to draw "
                                 f"a P x K batch from")
            self.groups[modality] = groups
        self.label_pools = {m: np.array(sorted(g), dtype=np.int64) for m, g in self.groups.items()}

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass draw the steps of ``epoch`` (the RNG is seeded with ``(seed, epoch)``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.iterations

    def _draw_labels(self, rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
        """P labels of ``pool``: distinct when the pool is large enough, else each once plus repeats."""
        p = self.num_labels_per_step
        if len(pool) >= p:
            return pool[rng.choice(len(pool), size=p, replace=False)]
        extra = pool[rng.choice(len(pool), size=p - len(pool), replace=True)]
        return np.concatenate([pool[rng.permutation(len(pool))], extra])

    def _draw_instances(self, rng: np.random.Generator, members: np.ndarray) -> np.ndarray:
        k = self.instances
        return members[rng.choice(len(members), size=k, replace=len(members) < k)]

    def _rank_share(self, chosen: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of the P chosen labels (positions into ``chosen``)."""
        return np.array_split(np.arange(len(chosen)), self.world_size)[self.rank]

    def _step(self, rng: np.random.Generator) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng([self.seed % 2**64, self.epoch % 2**64])  # SeedSequence wants >= 0
        for _ in range(self.iterations):
            yield self._step(rng)


class PerModalityPKSampler(PKSampler):
    """Independent P x K draws per modality: P = ``batch_size // instances`` labels present in that modality.

    Args:
        labels: [N] int64 label of every training sample; -1 is never drawn.
        modality_ids: [N] int64 index into ``modalities`` of every sample.
        modalities: modality names, the keys of every step.
        batch_size: images per modality per step over all ranks; instances: K.
        iterations: steps per pass; seed: with ``set_epoch``, fixes every draw.
        rank, world_size: this process's share of each step.
    """

    def _step(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        step: dict[str, np.ndarray] = {}
        for modality in self.modalities:
            groups = self.groups[modality]
            chosen = self._draw_labels(rng, self.label_pools[modality])
            drawn = [self._draw_instances(rng, groups[int(label)]) for label in chosen]
            mine = self._rank_share(chosen)
            step[modality] = np.concatenate([drawn[i] for i in mine]).astype(np.int64, copy=False)
        return step


class AlignedPKSampler(PKSampler):
    """The same P identities in every modality, K instances per modality each.

    Only labels with samples in every modality are drawn; same arguments as :class:`PerModalityPKSampler`.
    """

    def __init__(self, labels: np.ndarray, modality_ids: np.ndarray, modalities: Sequence[str], *,
                 batch_size: int, instances: int, iterations: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(labels, modality_ids, modalities, batch_size=batch_size, instances=instances,
                         iterations=iterations, seed=seed, rank=rank, world_size=world_size)
        shared = set.intersection(*(set(groups) for groups in self.groups.values()))
        if not shared:
            raise ValueError(f"no label has samples in every modality {list(self.modalities)}: an aligned "
                             f"P x K batch is impossible")
        self.shared_labels = np.array(sorted(shared), dtype=np.int64)

    def _step(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        chosen = self._draw_labels(rng, self.shared_labels)
        mine = self._rank_share(chosen)
        step: dict[str, np.ndarray] = {}
        for modality in self.modalities:
            groups = self.groups[modality]
            drawn = [self._draw_instances(rng, groups[int(label)]) for label in chosen]
            step[modality] = np.concatenate([drawn[i] for i in mine]).astype(np.int64, copy=False)
        return step
