"""What a dataset module provides: training samples and evaluation protocols.

A dataset is registered under the ``reidkit.datasets`` entry-point group as a class with
``from_config(cfg: DataConfig) -> ReIDDataset``. Protocols describe *what* to compare; the evaluation
package (``reidkit.evaluation``) does the comparing.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from reidkit.data.records import Sample, count_by_modality


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete or malformed; the message says what was expected."""


#: exclusion rules a protocol can name (implemented in ``reidkit.evaluation.protocols``)
EXCLUSION_RULES = ("none", "same-id-same-camera", "sysu-location", "aligned-twin")


@dataclass
class Protocol:
    """One evaluation setting, e.g. SYSU-MM01 ``all-search`` or generic ``visible-to-infrared``.

    Attributes:
        name: the protocol's name as users select it (``eval.protocols``).
        query: the query samples (identical in every trial).
        gallery_pool: every sample any trial's gallery may use.
        trials: per trial, int64 positions into ``gallery_pool`` forming that trial's gallery.
        exclusion: which gallery entries each query skips: ``"none"``, ``"same-id-same-camera"``
            (market rule) or ``"sysu-location"`` (infrared camera 3 skips visible camera 2).
        dedup_cmc: whether CMC counts each gallery identity once, at its best rank (SYSU-MM01, LLCM).
        info: provenance to report beside the numbers (e.g. ``{"sampler": "official rand_perm_cam.mat"}``).
    """

    name: str
    query: Sequence[Sample]
    gallery_pool: Sequence[Sample]
    trials: list[np.ndarray]
    exclusion: str = "same-id-same-camera"
    dedup_cmc: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.exclusion not in EXCLUSION_RULES:
            raise ValueError(f"unknown exclusion rule {self.exclusion!r}; known: {', '.join(EXCLUSION_RULES)}")
        self.trials = [np.asarray(t, dtype=np.int64) for t in self.trials]
        if not self.trials:
            raise ValueError(f"protocol {self.name!r} has no trial")

    @classmethod
    def single(cls, name: str, query: Sequence[Sample], gallery: Sequence[Sample], **kw: Any) -> Protocol:
        """A protocol with one trial whose gallery is the whole pool."""
        return cls(name=name, query=query, gallery_pool=gallery, trials=[np.arange(len(gallery))], **kw)

    def gallery(self, trial: int) -> list[Sample]:
        return [self.gallery_pool[i] for i in self.trials[trial]]

    def summary(self) -> dict[str, int]:
        """``{"query", "gallery", "trials"}`` with gallery = size of one trial's gallery (the first)."""
        return {"query": len(self.query), "gallery": len(self.trials[0]), "trials": len(self.trials)}


class ReIDDataset:
    """A loaded dataset: training samples, modalities and protocols.

    Subclasses set ``name`` and ``modalities`` and implement ``from_config``; ``official_counts`` gives the
    published numbers ``data check`` compares against (same shape as ``check_report``).
    """

    name: ClassVar[str] = ""
    #: published counts to compare with, {"train": {modality: {"images", "ids"}}, "protocols": {...}}
    official_counts: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        root: str | None,
        modalities: Sequence[str],
        train: Sequence[Sample],
        protocols: dict[str, Protocol],
        *,
        num_train_ids: int | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.modalities = tuple(modalities)
        self.train = list(train)
        self._protocols = protocols
        self.num_train_ids = num_train_ids if num_train_ids is not None else len({s.person_id for s in train})
        self.notes = list(notes)
        #: validation protocols carved from training identities (``data.val_ids``, reidkit.data.holdout)
        self.validation: dict[str, Protocol] = {}
        self.validation_ids: list[int] = []
        unknown = {s.modality for s in self.train} - set(self.modalities)
        if unknown:
            raise DatasetError(f"{self.name}: training samples with unknown modalities {sorted(unknown)}")

    @classmethod
    def from_config(cls, cfg: Any) -> ReIDDataset:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def protocols(self) -> dict[str, Protocol]:
        return self._protocols

    def check_report(self) -> dict[str, Any]:
        """The ``reidkit data check --json`` document."""
        return {
            "dataset": self.name,
            "root": self.root,
            "train": count_by_modality(self.train),
            "protocols": {name: p.summary() for name, p in self.protocols.items()},
        }
