"""What a dataset module provides: training samples, modality roles and evaluation protocols.

A dataset is registered under the ``reidkit.datasets`` entry-point group as a :class:`ReIDDataset` subclass
with ``from_config(cfg: DataConfig, args: Config) -> ReIDDataset``, where ``Config`` is the class's own
frozen dataclass of options (set as ``dataset_args.*``, validated like ``method_args``), and
``write_example(root)``, which writes a tiny copy of its layout for the contract checks
(``reidkit.testing.check_dataset``). Protocols describe *what* to compare; the evaluation package
(``reidkit.evaluation``) does the comparing.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from reidkit.data.records import Sample, count_by_modality
from reidkit.data.roles import check_roles, colour_modality, infer_roles


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete or malformed; the message says what was expected."""


@dataclass
class Protocol:
    """One evaluation setting, e.g. SYSU-MM01 ``all-search`` or generic ``visible-to-infrared``.

    Attributes:
        name: the protocol's name as users select it (``eval.protocols``).
        query: the query samples (identical in every trial).
        gallery_pool: every sample any trial's gallery may use.
        trials: per trial, int64 positions into ``gallery_pool`` forming that trial's gallery.
        exclusion: which gallery entries each query skips: the name of a rule registered under the
            ``reidkit.exclusions`` entry points, e.g. ``"none"``, ``"same-id-same-camera"`` (market rule),
            ``"sysu-location"`` (infrared camera 3 skips visible camera 2) or ``"aligned-twin"``
            (``reidkit.evaluation.protocols``).
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
        from reidkit.evaluation.protocols import check_exclusion

        check_exclusion(self.exclusion)
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


@dataclass(frozen=True)
class NoOptions:
    """The ``Config`` of a dataset without options of its own (``dataset_args`` stays empty)."""


class ReIDDataset:
    """A loaded dataset: training samples, modalities, their roles and protocols.

    Subclasses set ``name`` (the registry name) and ``Config`` (a frozen dataclass, every field with a
    default: the dataset's ``dataset_args``), implement ``from_config`` and ``write_example``, and pass
    ``modalities`` and their ``roles`` (``reidkit.data.roles``: which modality carries colour) to
    ``__init__``; without ``roles`` they are inferred from the modality names. ``official_counts`` gives the
    published numbers ``data check`` compares against (same shape as ``check_report``).
    """

    name: ClassVar[str] = ""
    #: the dataset's own options, set as ``dataset_args.*`` (validated like ``method_args``)
    Config: ClassVar[type] = NoOptions
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
        roles: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.modalities = tuple(modalities)
        try:
            #: ``{modality: role}``, role one of ``colour``, ``infrared``, ``other`` (reidkit.data.roles)
            self.roles = check_roles(infer_roles(self.modalities) if roles is None else roles, self.modalities,
                                     self.name or type(self).__name__)
        except ValueError as e:
            raise DatasetError(str(e)) from None
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
    def from_config(cls, cfg: Any, args: Any = None) -> ReIDDataset:  # pragma: no cover - abstract
        """The dataset that ``cfg`` (the ``data`` section) and ``args`` (a ``Config``; None = its defaults)
        describe."""
        raise NotImplementedError

    @classmethod
    def write_example(cls, root: Path) -> Path:  # pragma: no cover - abstract
        """Write a tiny copy of the dataset's layout (a few identities, real images) under ``root`` and
        return the folder ``data.root`` points at; the contract checks load it with the default options."""
        raise NotImplementedError(f"{cls.__name__} has no write_example(root): the dataset contract "
                                  "(reidkit.testing.check_dataset) needs a tiny copy of its layout")

    @classmethod
    def options(cls, args: Any) -> Any:
        """``args`` if given, else the defaults of ``cls.Config`` (what ``from_config`` reads options from)."""
        return cls.Config() if args is None else args

    @property
    def protocols(self) -> dict[str, Protocol]:
        return self._protocols

    @property
    def colour_modality(self) -> str | None:
        """The modality whose role is ``colour`` (None when none carries colour)."""
        return colour_modality(self.roles)

    def check_report(self) -> dict[str, Any]:
        """The ``reidkit data check --json`` document."""
        return {
            "dataset": self.name,
            "root": self.root,
            "train": count_by_modality(self.train),
            "protocols": {name: p.summary() for name, p in self.protocols.items()},
        }
