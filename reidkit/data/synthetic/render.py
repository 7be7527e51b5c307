"""Render one capture in one or more modalities, plus its part mask.

The geometry (body shapes -> anti-aliased layers) is computed once per capture; each modality then shades
the same layers, composites them over its view of the scene, and applies its camera:

- ``visible``: coloured light (brightness, colour cast, side light), blur, noise;
- ``infrared`` / ``tir`` / ``thermal``: lower detail (extra blur), automatic gain control over the
  frame's temperature range, noise and column fixed-pattern noise; grey;
- ``nir``: active illuminator (bright centre, dim edges), blur, noise; grey.

Noise and gain jitter are drawn from the capture's own seed, so a capture renders identically every time,
whatever else is rendered around it.
"""
from __future__ import annotations

import zlib

import numpy as np
from scipy.ndimage import gaussian_filter

from reidkit.data.synthetic import appearance, background
from reidkit.data.synthetic.body import body_shapes
from reidkit.data.synthetic.masks import part_map
from reidkit.data.synthetic.people import Person
from reidkit.data.synthetic.presets import Knobs
from reidkit.data.synthetic.raster import Layer, rasterise
from reidkit.data.synthetic.scene import Camera, Capture

THERMAL = ("infrared", "tir", "thermal")
MODALITY_KINDS = {"visible": "visible", "nir": "nir", **{m: "thermal" for m in THERMAL}}


def _composite(canvas: np.ndarray, layers: list[Layer], shade) -> np.ndarray:
    """Paint each layer's shaded values over ``canvas`` ([H, W] or [H, W, C]) with its coverage."""
    for layer in layers:
        values = shade(layer)
        a = layer.alpha if canvas.ndim == 2 else layer.alpha[..., None]
        region = canvas[layer.rows, layer.cols]
        canvas[layer.rows, layer.cols] = region + (values - region) * a
    return canvas


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.05:
        return image
    sigmas = (sigma, sigma, 0) if image.ndim == 3 else sigma
    return gaussian_filter(image, sigma=sigmas, mode="nearest")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_visible(person: Person, capture: Capture, camera: Camera, layers: list[Layer], knobs: Knobs,
                   height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """[H, W, 3] uint8 colour image."""
    canvas = background.visible_background(camera, capture, height, width, knobs.clutter)
    canvas = _composite(canvas, layers,
                        lambda l: appearance.visible_rgb(person, l.surface, l, capture.view, capture.light))
    if capture.occluder is not None:
        canvas = background.paste_occluder(canvas, capture.occluder, capture.occluder.colour)
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    light = capture.brightness * (1 + 0.25 * knobs.illumination * capture.light * xs)[None, :, None]
    image = canvas * light * np.array(capture.cast, dtype=np.float32)
    image = _blur(image, knobs.blur * camera.blur)
    image = image + rng.normal(0, knobs.noise, image.shape).astype(np.float32)
    return _to_uint8(np.clip(image, 0, 1) ** (1 / 1.3))


def thermal_scene(person: Person, capture: Capture, camera: Camera, layers: list[Layer], knobs: Knobs,
                  height: int, width: int) -> np.ndarray:
    """[H, W] float apparent temperature of the scene before the camera's optics and gain; built from
    temperatures and emissivities only, so it cannot depend on any colour."""
    ambient = camera.ambient
    canvas = background.thermal_background(camera, capture, height, width, knobs.clutter)
    canvas = _composite(canvas, layers, lambda l: appearance.thermal_radiance(
        person, l.surface, l, capture.view, ambient, knobs.pattern_contrast, knobs.solar_load))
    if capture.occluder is not None:
        canvas = background.paste_occluder(canvas, capture.occluder, ambient + capture.occluder.temperature)
    return canvas


def render_thermal(person: Person, capture: Capture, camera: Camera, layers: list[Layer], knobs: Knobs,
                   height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """[H, W] uint8 thermal image: lower detail (blur), automatic gain over the frame's temperature range
    (jittered per image), noise and column fixed-pattern noise."""
    canvas = thermal_scene(person, capture, camera, layers, knobs, height, width)
    canvas = _blur(canvas, (knobs.thermal_blur + 0.5 * knobs.blur) * camera.blur)
    low, high = np.percentile(canvas, [1.0, 99.5])
    span = max(high - low, 0.05)
    jitter = knobs.agc_jitter * rng.uniform(-1, 1, 2)
    low, high = low - span * (0.05 + 0.1 * jitter[0]), high + span * (0.1 + 0.15 * jitter[1])
    image = (canvas - low) / max(high - low, 1e-3)
    fixed = np.random.default_rng([camera.seed, 5]).normal(0, 0.5 * knobs.thermal_noise, width)
    image = image + fixed[None, :] + rng.normal(0, knobs.thermal_noise, image.shape)
    return _to_uint8(image)


def render_nir(person: Person, capture: Capture, camera: Camera, layers: list[Layer], knobs: Knobs,
               height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """[H, W] uint8 near-infrared image under the camera's own illuminator."""
    canvas = background.nir_background(camera, capture, height, width, knobs.clutter)
    canvas = _composite(canvas, layers, lambda l: appearance.nir_reflectance(person, l.surface, l, capture.view))
    if capture.occluder is not None:
        canvas = background.paste_occluder(canvas, capture.occluder, capture.occluder.nir)
    ys = (np.arange(height, dtype=np.float32)[:, None] + 0.5) / height - 0.5
    xs = (np.arange(width, dtype=np.float32)[None, :] + 0.5) / width - 0.5
    spot = np.exp(-(xs ** 2 / 0.15 + ys ** 2 / 0.35))
    light = 1.3 * capture.brightness * (0.6 + camera.illuminator * (spot - 0.5))
    image = _blur(canvas * light, 1.2 * knobs.blur * camera.blur)
    image = image + rng.normal(0, 1.5 * knobs.noise, image.shape)
    return _to_uint8(np.clip(image, 0, 1) ** (1 / 1.2))


_RENDERERS = {"visible": render_visible, "thermal": render_thermal, "nir": render_nir}


def render_capture(person: Person, capture: Capture, camera: Camera, modalities: tuple[str, ...],
                   knobs: Knobs, height: int, width: int, *, renderers: dict[str, str] | None = None
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``({modality: uint8 image}, part map)`` for one capture; every modality shares the geometry, so
    the part map ([H, W] uint8, ids of ``masks.PARTS``) fits each of them. ``renderers`` maps a modality
    name to the renderer to use where the name does not say it (e.g. ``{"infrared": "nir"}``)."""
    layers = rasterise(body_shapes(person, capture), capture, height, width)
    images = {}
    for modality in modalities:
        kind = MODALITY_KINDS.get((renderers or {}).get(modality, modality))
        if kind is None:
            raise ValueError(f"no renderer for modality {modality!r}; known: {', '.join(MODALITY_KINDS)}")
        rng = np.random.default_rng([capture.seed, zlib.crc32(modality.encode())])
        images[modality] = _RENDERERS[kind](person, capture, camera, layers, knobs, height, width, rng)
    return images, part_map(layers, capture.occluder, height, width)
