"""The ``synthetic`` dataset: reidkit's procedural cross-modality people (the default dataset).

``data.dataset=synthetic`` with ``data.preset`` (``tiny``, ``small``, ``standard``, ``tiny-3m``,
``small-3m``, ``standard-3m``). With ``data.root`` unset the preset is generated on first use into the
user's cache (``$XDG_CACHE_HOME/reidkit``, else ``~/.cache/reidkit``) and reused afterwards; with
``data.root`` set it reads a folder written by ``reidkit data synth``. Protocols are the generic ones:
every ordered pair of modalities, same-identity-same-camera gallery entries skipped (for aligned 3-modality
presets this removes the query's own aligned twin). See docs/synthetic.md.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.generic import GenericDataset
from reidkit.data.synthetic import PRESETS, cached_root
from reidkit.data.synthetic.writer import META_FILE


class SyntheticDataset(GenericDataset):
    name = "synthetic"

    @classmethod
    def from_config(cls, cfg: Any) -> SyntheticDataset:
        """``cfg.root`` if given, else the cached ``cfg.preset`` (seed 0), generated on first use."""
        if cfg.root:
            root = Path(cfg.root).expanduser()
        else:
            if cfg.preset not in PRESETS:
                raise DatasetError(f"unknown synthetic preset {cfg.preset!r}; known: {', '.join(PRESETS)}")
            root = cached_root(cfg.preset, seed=0)
        return cls.from_root(root, mask_root=getattr(cfg, "mask_root", None))

    @classmethod
    def from_root(cls, root: str | Path, *, mask_root: str | Path | None = None) -> SyntheticDataset:
        base = GenericDataset.from_root(root, mask_root=mask_root)
        notes = []
        meta_file = Path(root).expanduser() / META_FILE
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            notes.append(f"synthetic preset {meta.get('preset')} seed {meta.get('seed')} "
                         f"generator v{meta.get('version')}")
        return cls(base.root, base.modalities, base.train, base.protocols,
                   num_train_ids=len({s.person_id for s in base.train}), notes=notes)
