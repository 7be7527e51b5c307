"""CHCR: cross-modality hierarchical clustering and inter-channel refinement (registry name ``chcr``).

See :mod:`.method` for the epoch schedule, :mod:`.config` for the switches and the ablation ladder,
docs/methods.md (CHCR) for what the paper says and what this reconstruction adds.
"""
from .config import CHCRConfig
from .method import CHCR

__all__ = ["CHCR", "CHCRConfig"]
