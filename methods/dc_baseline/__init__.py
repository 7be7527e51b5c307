"""``dc-baseline``: supervised cross-modality reference with intra-modality branches and a Gaussian
distribution-consistency loss (Zhang et al., IJMLC 2025; docs/methods.md, dc-baseline). Registered through
the ``reidkit.methods`` entry point."""
from .config import DCBaselineConfig
from .method import DCBaseline

__all__ = ["DCBaseline", "DCBaselineConfig"]
