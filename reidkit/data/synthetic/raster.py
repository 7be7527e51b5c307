"""Rasterise body shapes into anti-aliased layers (vectorised numpy, one bounding box per shape).

A :class:`Layer` is the coverage of one shape on a rectangle of the image plus the body coordinates of
those pixels (so prints and textures stick to the body) and a cross-section coordinate ``v`` in [-1, 1]
(0 on the shape's axis, +-1 at its rim) that the renderers use for cylindrical shading. The same layers
are shaded by every modality, which keeps aligned captures and masks pixel-exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reidkit.data.synthetic.body import Shape
from reidkit.data.synthetic.scene import Capture


@dataclass
class Layer:
    """One shape on the image: ``alpha``/``v``/``bx``/``by`` are [h, w] arrays over ``rows`` x ``cols``."""

    surface: str
    rows: slice
    cols: slice
    alpha: np.ndarray
    v: np.ndarray
    bx: np.ndarray
    by: np.ndarray


def _bbox(shape: Shape) -> tuple[float, float, float, float]:
    """x0, x1, y0, y1 of a shape in body units (padded by its radius)."""
    p = shape.params
    if shape.kind == "ellipse":
        cx, cy, rx, ry = p
        return cx - rx, cx + rx, cy - ry, cy + ry
    ax, ay, bx, by, ra, rb = p
    r = max(ra, rb)
    return min(ax, bx) - r, max(ax, bx) + r, min(ay, by) - r, max(ay, by) + r


def _ellipse(x: np.ndarray, y: np.ndarray, p: tuple[float, ...], pixel: float) -> tuple[np.ndarray, np.ndarray]:
    cx, cy, rx, ry = p
    dx, dy = (x - cx) / rx, (y - cy) / ry
    q = np.sqrt(dx * dx + dy * dy)
    sdf = (q - 1) * min(rx, ry)
    return np.clip(0.5 - sdf / pixel, 0, 1), np.clip(dx, -1, 1)


def _segment(x: np.ndarray, y: np.ndarray, p: tuple[float, ...], pixel: float, caps: bool
             ) -> tuple[np.ndarray, np.ndarray]:
    ax, ay, bx, by, ra, rb = p
    dx, dy = bx - ax, by - ay
    length = max(np.hypot(dx, dy), 1e-9)
    ux, uy = dx / length, dy / length
    along = (x - ax) * ux + (y - ay) * uy  # distance along the axis
    across = (x - ax) * -uy + (y - ay) * ux  # signed distance from the axis
    t = np.clip(along / length, 0, 1)
    r = ra + (rb - ra) * t
    if caps:
        sdf = np.hypot(along - t * length, across) - r
    else:
        sdf = np.maximum(np.abs(across) - r, np.maximum(-along, along - length))
    return np.clip(0.5 - sdf / pixel, 0, 1), np.clip(across / r, -1, 1)


def rasterise(shapes: list[Shape], capture: Capture, height: int, width: int) -> list[Layer]:
    """Layers of ``shapes`` (back to front) framed by ``capture``; shapes outside the image are dropped."""
    scale, facing = capture.scale, capture.facing
    pixel = 1.0 / scale  # one pixel in body units: the anti-aliasing width
    layers = []
    for shape in shapes:
        x0, x1, y0, y1 = _bbox(shape)
        if facing < 0:
            x0, x1 = -x1, -x0
        c0 = max(int(np.floor(capture.cx + x0 * scale)) - 1, 0)
        c1 = min(int(np.ceil(capture.cx + x1 * scale)) + 1, width)
        r0 = max(int(np.floor(capture.top + y0 * scale)) - 1, 0)
        r1 = min(int(np.ceil(capture.top + y1 * scale)) + 1, height)
        if c0 >= c1 or r0 >= r1:
            continue
        by = ((np.arange(r0, r1, dtype=np.float32) + 0.5 - capture.top) / scale)[:, None]
        bx = ((np.arange(c0, c1, dtype=np.float32) + 0.5 - capture.cx) / scale)[None, :]
        bx, by = np.broadcast_arrays(bx * facing, by)  # body coordinates, un-mirrored
        if shape.kind == "ellipse":
            alpha, v = _ellipse(bx, by, shape.params, pixel)
        else:
            alpha, v = _segment(bx, by, shape.params, pixel, caps=shape.kind == "capsule")
        if not alpha.any():
            continue
        layers.append(Layer(shape.surface, slice(r0, r1), slice(c0, c1), alpha.astype(np.float32),
                            v.astype(np.float32), bx, by))
    return layers
