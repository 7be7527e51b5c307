"""The synthetic renderer's physics: masks aligned with pixels; colour absent from thermal images."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion

from reidkit.data.synthetic.appearance import nir_reflectance, thermal_radiance
from reidkit.data.synthetic.body import body_shapes
from reidkit.data.synthetic.people import recolour, rehue, sample_people
from reidkit.data.synthetic.presets import Knobs
from reidkit.data.synthetic.raster import rasterise
from reidkit.data.synthetic.render import render_capture, render_visible, thermal_scene
from reidkit.data.synthetic.scene import make_camera, sample_capture

H, W = 128, 64


def _setups(knobs: Knobs, n: int = 12):
    people = sample_people(5, "train", list(range(1, n + 1)), knobs)
    cameras = [make_camera(5, cam, slot, W, H, knobs) for slot, cam in enumerate((1, 2, 3, 4))]
    for i, person in enumerate(people):
        camera = cameras[i % 4]
        capture = sample_capture(np.random.default_rng([i, 9]), person, camera, W, H, knobs)
        yield person, capture, camera


def _iou(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """IoU of boolean maps, ignoring the one-pixel band around ``mask``'s edge (anti-aliased pixels)."""
    keep = np.ones_like(a) if mask is None else ~_edge_band(mask)
    a, b = a & keep, b & keep
    return float((a & b).sum() / max((a | b).sum(), 1))


def _edge_band(mask: np.ndarray) -> np.ndarray:
    grown, shrunk = binary_dilation(mask), binary_erosion(mask)
    return grown & ~shrunk


def test_mask_is_aligned_with_the_visible_pixels():
    knobs = Knobs(blur=0.0, noise=0.0, occlusion=0.0)
    for person, capture, camera in _setups(knobs):
        layers = rasterise(body_shapes(person, capture), capture, H, W)
        images, parts = render_capture(person, capture, camera, ("visible",), knobs, H, W)
        empty = render_visible(person, capture, camera, [], knobs, H, W, np.random.default_rng(0))
        changed = np.abs(images["visible"].astype(int) - empty.astype(int)).max(axis=2) > 2
        mask = parts > 0
        assert _iou(changed, mask, mask) > 0.98
        shifted = np.roll(mask, 2, axis=1)
        assert _iou(changed, shifted, shifted) < 0.95  # a 2-pixel misalignment fails the check
        assert len(layers) > 10


def test_occluded_pixels_are_background_in_the_mask():
    knobs = Knobs(occlusion=1.0)
    for person, capture, camera in _setups(knobs, n=6):
        _, parts = render_capture(person, capture, camera, ("visible",), knobs, H, W)
        occ = capture.occluder
        inside = parts[int(max(occ.y0, 0)) + 1:int(min(occ.y1, H)) - 1, int(max(occ.x0, 0)) + 1:int(min(occ.x1, W)) - 1]
        assert inside.size == 0 or (inside == 0).all()


@pytest.mark.parametrize("modality", ["infrared", "tir"])
def test_recoloured_garments_give_the_same_thermal_image(modality):
    """Without sunlight, any colour change (materials kept) leaves infrared untouched; the thermal
    silhouette still fits the mask."""
    knobs = Knobs(solar_load=0.0)
    quiet = Knobs(blur=0.0, thermal_blur=0.0, solar_load=0.0)
    for i, (person, capture, camera) in enumerate(_setups(knobs)):
        other = recolour(person, np.random.default_rng(i))
        assert other.upper.colour != person.upper.colour and other.upper.material == person.upper.material
        a, parts = render_capture(person, capture, camera, ("visible", modality), knobs, H, W)
        b, parts_b = render_capture(other, capture, camera, ("visible", modality), knobs, H, W)
        assert np.array_equal(a[modality], b[modality])
        assert np.array_equal(parts, parts_b)
        assert np.abs(a["visible"].astype(int) - b["visible"].astype(int)).mean() > 1.0
        layers = rasterise(body_shapes(other, capture), capture, H, W)
        scene = thermal_scene(other, capture, camera, layers, quiet, H, W)
        empty = thermal_scene(other, capture, camera, [], quiet, H, W)
        warm = np.abs(scene - empty) > 1e-3
        assert _iou(warm, parts > 0, parts > 0) > 0.98


@pytest.mark.parametrize("modality", ["infrared", "tir"])
def test_hue_changes_never_reach_thermal_images_even_in_sunlight(modality):
    """With solar_load, dark cloth is warmer than light cloth, but a hue turned at equal luminance changes
    nothing an infrared camera sees (up to one grey level of float rounding), while visible images change."""
    knobs = Knobs(solar_load=1.0)
    for i, (person, capture, camera) in enumerate(_setups(knobs, n=8)):
        other = rehue(person, np.random.default_rng(i))
        assert other.upper.colour != person.upper.colour
        a, _ = render_capture(person, capture, camera, ("visible", modality), knobs, H, W)
        b, _ = render_capture(other, capture, camera, ("visible", modality), knobs, H, W)
        assert np.abs(a[modality].astype(int) - b[modality].astype(int)).max() <= 1
        assert np.abs(a["visible"].astype(int) - b["visible"].astype(int)).mean() > 1.0
    # and the sunlight term is real: a darker dye (same hue) warms the garment
    person, capture, camera = next(_setups(knobs))
    layers = rasterise(body_shapes(person, capture), capture, H, W)
    dark = dataclasses.replace(person, upper=dataclasses.replace(person.upper, colour=(0.05, 0.05, 0.05),
                                                                 pattern="plain"))
    light = dataclasses.replace(person, upper=dataclasses.replace(person.upper, colour=(0.9, 0.9, 0.9),
                                                                  pattern="plain"))
    torso = next(layer for layer in layers if layer.surface == "upper")
    warm = thermal_radiance(dark, "upper", torso, capture.view, 0.2, 0.35, solar_load=1.0)
    cool = thermal_radiance(light, "upper", torso, capture.view, 0.2, 0.35, solar_load=1.0)
    assert float((warm - cool).mean()) > 0.05


def test_prints_and_accessories_show_in_thermal_but_not_colour():
    knobs = Knobs(blur=0.0, thermal_blur=0.0, thermal_noise=0.0, occlusion=0.0, view_mix=0.0)
    person, capture, camera = next(_setups(knobs))
    plain = dataclasses.replace(person, upper=dataclasses.replace(person.upper, pattern="plain"))
    striped = dataclasses.replace(person, upper=dataclasses.replace(person.upper, pattern="stripes"))
    a, _ = render_capture(plain, capture, camera, ("infrared",), knobs, H, W)
    b, _ = render_capture(striped, capture, camera, ("infrared",), knobs, H, W)
    assert np.abs(a["infrared"].astype(int) - b["infrared"].astype(int)).max() > 10


def test_nir_depends_on_material_not_only_on_luminance():
    knobs = Knobs()
    person, capture, camera = next(_setups(knobs))
    layer = next(l for l in rasterise(body_shapes(person, capture), capture, H, W) if l.surface == "upper")
    values = []
    for material in (0, 3):  # cotton vs leather, same dye
        garment = dataclasses.replace(person.upper, material=material, pattern="plain")
        values.append(nir_reflectance(dataclasses.replace(person, upper=garment), "upper", layer, "front").mean())
    assert abs(values[0] - values[1]) > 0.05
