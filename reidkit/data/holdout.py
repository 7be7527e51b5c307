"""A validation split carved from the training identities (``data.val_ids``).

Unsupervised methods trained from scratch have hyper-parameters (learning rate, temperatures, clustering
radii) that the published values do not fit, and tuning them on the test split is the field's habit that
reidkit refuses (no checkpoint and no setting is ever chosen by a test score; docs/validation.md). This module
holds out ``n`` training identities, with all their images in every modality: they leave the training set
(no method, supervised or not, ever sees them), and become validation protocols built exactly like the
generic test protocols (``<q>-to-<g>`` for every ordered pair of modalities, plus one-versus-the-rest
with three or more; the same-identity-same-camera rule). Tune on ``validation``, then train with the
chosen values on the whole training set and report the test split once.

The held-out identities are drawn by ``data.val_seed`` alone, never by the run's seed, so runs that differ
in seed or recipe are compared on the same validation identities. Only identities seen in at least two
modalities are eligible (a cross-modality query needs a match in another modality).
"""
from __future__ import annotations

import copy
import logging

import numpy as np

from reidkit.data.datasets.base import DatasetError, ReIDDataset
from reidkit.data.datasets.generic import modality_protocols

log = logging.getLogger(__name__)


def eligible_identities(dataset: ReIDDataset) -> np.ndarray:
    """Sorted training identities that have images in at least two modalities."""
    seen: dict[int, set[str]] = {}
    for s in dataset.train:
        seen.setdefault(s.person_id, set()).add(s.modality)
    return np.array(sorted(pid for pid, mods in seen.items() if len(mods) >= 2 and pid >= 0), dtype=np.int64)


def hold_out(dataset: ReIDDataset, num_ids: int, *, seed: int = 0) -> ReIDDataset:
    """A copy of ``dataset`` whose training set lacks ``num_ids`` identities, which form ``.validation``.

    ``.validation`` maps protocol names to :class:`Protocol` (like ``.protocols``, which is unchanged);
    ``.validation_ids`` lists the held-out identities. ``num_ids == 0`` returns ``dataset`` itself (whose
    ``.validation`` is empty).
    """
    if num_ids <= 0:
        return dataset
    pool = eligible_identities(dataset)
    total = len({s.person_id for s in dataset.train})
    if num_ids > len(pool) or total - num_ids < 2:
        raise DatasetError(f"data.val_ids={num_ids}: {dataset.name} has {total} training identities, {len(pool)} "
                           "of them in two or more modalities; hold out fewer (at least 2 must stay to train)")
    held = np.sort(np.random.default_rng(seed).choice(pool, size=num_ids, replace=False))
    held_set = set(held.tolist())
    train = [s for s in dataset.train if s.person_id not in held_set]
    val = [s for s in dataset.train if s.person_id in held_set]
    out = copy.copy(dataset)
    out.train = train
    out.num_train_ids = len({s.person_id for s in train})
    out.validation = modality_protocols({m: [s for s in val if s.modality == m] for m in dataset.modalities},
                                        info={"split": f"validation: {num_ids} training identities held out "
                                                       f"(data.val_seed {seed})"})
    out.validation_ids = held.tolist()
    log.info("validation split: %d of %d training identities held out (%d images); %d images left to train",
             num_ids, total, len(val), len(train))
    return out
