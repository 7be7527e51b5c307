"""Part-parsing masks: which body part each pixel shows (the shape input of IMSL's SMR).

Masks are palette PNGs: the pixel *index* is the part id (:data:`PARTS` order), and the palette gives each
part a distinct colour, like the colour-coded maps of human parsers (SCHP). ``np.array(Image.open(p))``
gives part ids; ``Image.open(p).convert("RGB")`` gives the colour picture a parser would have produced.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from reidkit.data.synthetic.body import PART_OF
from reidkit.data.synthetic.raster import Layer
from reidkit.data.synthetic.scene import Occluder

#: part names; the position is the id stored in the mask
PARTS = ("background", "head", "torso", "arms", "legs", "accessories")
PART_ID = {name: i for i, name in enumerate(PARTS)}
PALETTE = ((0, 0, 0), (220, 40, 40), (40, 180, 60), (250, 200, 40), (40, 90, 220), (200, 60, 220))


def part_map(layers: list[Layer], occluder: Occluder | None, height: int, width: int) -> np.ndarray:
    """[H, W] uint8 part ids: the front-most shape covering at least half of each pixel; pixels hidden by
    the occluder are background (a parser does not see through a pole)."""
    parts = np.zeros((height, width), dtype=np.uint8)
    for layer in layers:
        region = parts[layer.rows, layer.cols]
        region[layer.alpha >= 0.5] = PART_ID[PART_OF[layer.surface]]
    if occluder is not None:
        parts[occluder_cover(occluder, height, width) >= 0.5] = 0
    return parts


def occluder_cover(occluder: Occluder, height: int, width: int) -> np.ndarray:
    """[H, W] float coverage of an occluder rectangle (anti-aliased edges)."""
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    cx = np.clip(np.minimum(xs - occluder.x0, occluder.x1 - xs) + 0.5, 0, 1)
    cy = np.clip(np.minimum(ys - occluder.y0, occluder.y1 - ys) + 0.5, 0, 1)
    return cy[:, None] * cx[None, :]


def mask_image(parts: np.ndarray) -> Image.Image:
    """A palette image of a part map (index = part id)."""
    parts = np.ascontiguousarray(parts, dtype=np.uint8)
    img = Image.frombytes("P", (parts.shape[1], parts.shape[0]), parts.tobytes())
    flat = [c for rgb in PALETTE for c in rgb]
    img.putpalette(flat + [0] * (768 - len(flat)))
    return img


def save_mask(parts: np.ndarray, path: str | Path) -> None:
    mask_image(parts).save(path, optimize=False, compress_level=6)


def read_mask(path: str | Path) -> np.ndarray:
    """Part ids [H, W] uint8 of a saved mask."""
    with Image.open(path) as img:
        return np.array(img)
