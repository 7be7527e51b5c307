"""The procedural cross-modality person generator behind the ``synthetic`` dataset.

People with persistent attributes (body, garments with colour, print and material, hair, skin,
accessories) are filmed by cameras in several modalities: ``visible`` (colour), ``infrared``/``tir``
(thermal: temperature and emissivity, never colour) and ``nir`` (near-infrared reflectance). Every image
comes with a part-parsing mask. Presets (``tiny``, ``small``, ``standard`` and ``-3m`` variants) are written
in the ``generic`` layout and cached per (preset, seed, generator version). See docs/synthetic.md.

Public API::

    PRESETS                                    # {name: Preset}
    generate(preset, output, *, seed=0, progress=True, **knobs) -> Path
    cached_root(preset, seed=0) -> Path        # generated on first use, atomically
    preview(root, png, *, identities=6) -> Path
"""
from reidkit.data.synthetic.masks import PARTS, read_mask
from reidkit.data.synthetic.presets import GENERATOR_VERSION, PRESETS, Knobs, Preset, fingerprint, get_preset
from reidkit.data.synthetic.preview import preview
from reidkit.data.synthetic.writer import cache_dir, cached_root, generate

__all__ = ["GENERATOR_VERSION", "PARTS", "PRESETS", "Knobs", "Preset", "cache_dir", "cached_root", "fingerprint", "generate",
           "get_preset", "preview", "read_mask"]
