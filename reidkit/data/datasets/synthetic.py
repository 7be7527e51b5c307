"""The ``synthetic`` dataset: reidkit's procedural cross-modality people (the default dataset).

``data.dataset=synthetic`` with ``dataset_args.preset`` (``tiny``, ``small``, ``standard``, their ``-nir``
and ``-3m`` variants; ``dataset_args.world_seed``, default 0, picks the generator seed). With ``data.root``
unset the preset is generated on first use into the user's cache (``$XDG_CACHE_HOME/reidkit``, else
``~/.cache/reidkit``) and reused afterwards; with ``data.root`` set it reads a folder written by ``reidkit
data synth``. Protocols are the generic ones: every ordered pair of modalities, same-identity-same-camera
gallery entries skipped (for aligned 3-modality presets this removes the query's own aligned twin). See
docs/synthetic.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidkit.config import option
from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.generic import GenericConfig, GenericDataset
from reidkit.data.synthetic import PRESETS, cached_root
from reidkit.data.synthetic.writer import META_FILE


@dataclass(frozen=True)
class SyntheticConfig(GenericConfig):
    """``dataset_args`` of the synthetic dataset: the generic layout's, and which preset."""

    preset: str = option("small", choices=tuple(PRESETS), help="synthetic preset (docs/synthetic.md); "
                                                                "generated on first use when data.root is unset")
    world_seed: int = option(0, ge=0, help="the generator seed of the cached preset (benchmarks score seed 0; "
                                           "another seed is a disjoint world of the same preset, for tuning "
                                           "on data the benchmark never scores); not with data.root")


class SyntheticDataset(GenericDataset):
    name = "synthetic"
    Config = SyntheticConfig

    @classmethod
    def from_config(cls, cfg: Any, args: SyntheticConfig | None = None) -> SyntheticDataset:
        """``cfg.root`` if given, else the cached ``args.preset`` (seed ``args.world_seed``), generated on first
        use."""
        args = cls.options(args)
        if cfg.root:
            if args.world_seed:
                raise DatasetError(f"dataset_args.world_seed={args.world_seed} picks a cached preset, but data.root "
                                   f"is set ({cfg.root}); unset one of them")
            root = Path(cfg.root).expanduser()
        else:
            if args.preset not in PRESETS:
                raise DatasetError(f"unknown synthetic preset {args.preset!r}; known: {', '.join(PRESETS)}")
            root = cached_root(args.preset, seed=args.world_seed)
        return cls.from_root(root, mask_root=getattr(cfg, "mask_root", None), colour_modality=args.colour_modality)

    @classmethod
    def write_example(cls, root: Path) -> Path:
        from reidkit.data.synthetic import generate

        return generate("tiny", Path(root) / "synthetic", seed=0, progress=False)

    @classmethod
    def from_root(cls, root: str | Path, *, mask_root: str | Path | None = None,
                  colour_modality: str = "auto") -> SyntheticDataset:
        base = GenericDataset.from_root(root, mask_root=mask_root, colour_modality=colour_modality)
        notes = []
        meta_file = Path(root).expanduser() / META_FILE
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            notes.append(f"synthetic preset {meta.get('preset')} seed {meta.get('seed')} "
                         f"generator v{meta.get('version')}")
        return cls(base.root, base.modalities, base.train, base.protocols,
                   num_train_ids=len({s.person_id for s in base.train}), notes=notes, roles=base.roles)
