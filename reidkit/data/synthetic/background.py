"""Backgrounds and occluders: the camera's scene seen by each modality.

Every camera has one physical scene (wall or sky above a horizon, floor or ground below, rectangles for
doors, windows, poles, signs and the occasional warm lamp or vent) that is wider than the image; each
capture sees it through a horizontal shift. Visible light sees colours, thermal cameras see temperatures
(cool, smoothly textured, with a few warm distractors), near-infrared cameras see reflectances.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from reidkit.data.synthetic.masks import occluder_cover
from reidkit.data.synthetic.scene import Camera, Capture, Occluder, SceneObject

_SMOOTH: dict[tuple[int, int, int], np.ndarray] = {}


def smooth_noise(seed: int, height: int, width: int) -> np.ndarray:
    """[height, width] low-frequency noise in about [-1, 1], cached per (seed, size)."""
    key = (seed, height, width)
    if key not in _SMOOTH:
        rng = np.random.default_rng([seed, 11])
        field = gaussian_filter(rng.normal(size=(height, width)), sigma=height / 24, mode="wrap")
        field += 0.5 * gaussian_filter(rng.normal(size=(height, width)), sigma=height / 80, mode="wrap")
        _SMOOTH[key] = (field / (np.abs(field).max() + 1e-9)).astype(np.float32)
    return _SMOOTH[key]


def _rect_cover(obj: SceneObject, shift: float, height: int, width: int) -> np.ndarray:
    return occluder_cover(Occluder("", obj.x0 - shift, obj.x1 - shift, obj.y0, obj.y1, (0, 0, 0), 0, 0),
                          height, width)


def _scene(camera: Camera, capture: Capture, height: int, width: int, wall: np.ndarray, floor: np.ndarray,
           objects: list[np.ndarray], texture: float) -> np.ndarray:
    """[H, W, C] scene: wall above the horizon, floor below, objects pasted on, smooth texture on top."""
    channels = wall.shape[-1]
    ys = np.arange(height, dtype=np.float32)[:, None, None] + 0.5
    below = np.clip(ys - camera.horizon * height + 0.5, 0, 1)
    out = np.broadcast_to(wall + (floor - wall) * below, (height, width, channels)).copy()
    for obj, value in zip(camera.objects, objects):
        a = _rect_cover(obj, capture.scene_shift, height, width)[..., None]
        out = out * (1 - a) + value * a
    shift = int(capture.scene_shift)
    noise = smooth_noise(camera.seed, height, 3 * width)[:, shift:shift + width]
    return out * (1 + texture * noise[..., None])


def visible_background(camera: Camera, capture: Capture, height: int, width: int, clutter: float) -> np.ndarray:
    """[H, W, 3] linear RGB, slightly out of focus (the camera focuses on the person)."""
    wall = np.array(camera.wall, np.float32)
    objects = [wall + 0.7 * (np.array(o.colour, dtype=np.float32) - wall) for o in camera.objects]
    scene = _scene(camera, capture, height, width, wall, np.array(camera.floor, np.float32), objects,
                   0.15 * clutter)
    return gaussian_filter(scene, sigma=(1.0, 1.0, 0), mode="nearest")


def thermal_background(camera: Camera, capture: Capture, height: int, width: int, clutter: float) -> np.ndarray:
    """[H, W] apparent temperature."""
    amb = camera.ambient
    objects = [np.array([amb + o.temperature], dtype=np.float32) for o in camera.objects]
    scene = _scene(camera, capture, height, width, np.array([amb], np.float32),
                   np.array([amb + camera.floor_temperature], np.float32), objects, 0.0)[..., 0]
    shift = int(capture.scene_shift)
    return scene + 0.05 * clutter * smooth_noise(camera.seed + 1, height, 3 * width)[:, shift:shift + width]


def nir_background(camera: Camera, capture: Capture, height: int, width: int, clutter: float) -> np.ndarray:
    """[H, W] reflectance."""
    objects = [np.array([o.nir], dtype=np.float32) for o in camera.objects]
    return _scene(camera, capture, height, width, np.array([camera.nir_wall], np.float32),
                  np.array([camera.nir_floor], np.float32), objects, 0.2 * clutter)[..., 0]


def paste_occluder(image: np.ndarray, occluder: Occluder | None, value: np.ndarray | float) -> np.ndarray:
    """``image`` with the occluder (in ``value``: a colour, temperature or reflectance) in front."""
    if occluder is None:
        return image
    a = occluder_cover(occluder, image.shape[0], image.shape[1])
    if image.ndim == 3:
        a = a[..., None]
    return image * (1 - a) + np.asarray(value, dtype=np.float32) * a
