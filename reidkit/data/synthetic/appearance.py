"""What one surface of a person looks like to each kind of camera.

Three functions shade a :class:`~reidkit.data.synthetic.raster.Layer`:

- :func:`visible_rgb`: dye colour with prints, material texture and sheen, lit from one side;
- :func:`thermal_radiance`: surface temperature from skin heat minus garment insulation x thickness, times
  emissivity; prints change emissivity. **Colour is never read**, so re-dyeing clothes (keeping materials)
  leaves the thermal image unchanged;
- :func:`nir_reflectance`: per-material undyed reflectance mixed with the dye's luminance by the dye's NIR
  transparency, so near-infrared is related to, but not a fixed function of, visible luminance.
"""
from __future__ import annotations

import numpy as np

from reidkit.data.synthetic.materials import (
    ACCESSORY_MATERIALS,
    GARMENT_MATERIALS,
    HAIR,
    SKIN,
    SKIN_TEMPERATURE,
    Material,
    sample_texture,
    structure_field,
)
from reidkit.data.synthetic.people import Garment, Person
from reidkit.data.synthetic.raster import Layer

_SKIN_SURFACES = {"face": 0.0, "neck": -0.01, "hand": -0.05, "arm": -0.03, "leg": -0.04}
_STYLE_THICKNESS = {"tshirt": 1.0, "longsleeve": 1.0, "jacket": 1.15, "coat": 1.35,
                    "trousers": 1.0, "shorts": 1.0, "skirt": 0.9}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


#: temperature rise (normalised units; skin is 0.92, air 0.12-0.40) of a black, fully sunlit fabric
SOLAR_GAIN = 0.3


def _garment_of(person: Person, surface: str) -> Garment | None:
    if surface == "sleeve" and person.sleeves is not None:
        return person.sleeves
    if surface in ("upper", "sleeve"):
        return person.upper
    if surface == "lower":
        return person.lower
    return None


def _accessory_of(person: Person, surface: str):
    if surface in ("backpack", "bag", "hat"):
        return getattr(person, surface)
    if surface == "strap":
        return person.backpack or person.bag
    return None


def material_of(person: Person, surface: str) -> tuple[Material, int]:
    """The material of a surface and a texture seed for it."""
    garment = _garment_of(person, surface)
    if garment is not None:
        return GARMENT_MATERIALS[garment.material], garment.material
    accessory = _accessory_of(person, surface)
    if accessory is not None:
        return ACCESSORY_MATERIALS[accessory.material], 10 + accessory.material
    if surface == "shoe":
        return ACCESSORY_MATERIALS[2], 12
    if surface == "hair":
        return HAIR, 20
    return SKIN, 21


def print_mask(person: Person, surface: str, layer: Layer, view: str) -> np.ndarray:
    """[h, w] float in {0, 1}: where the garment's print (stripes, checks, logo) covers the layer.

    Logos are printed on the chest and seen only from the front; stripes and checks from every view.
    """
    garment = _garment_of(person, surface)
    if garment is None or garment.pattern == "plain":
        return np.zeros_like(layer.alpha)
    s, phase = garment.pattern_scale, garment.pattern_offset
    if garment.pattern == "stripes":
        return (np.mod(layer.by / s + phase, 1.0) < 0.45).astype(np.float32)
    if garment.pattern == "vstripes":
        return (np.mod(layer.bx / s + phase, 1.0) < 0.4).astype(np.float32)
    if garment.pattern == "checks":
        return (np.mod(np.floor(layer.bx / s + phase) + np.floor(layer.by / s + phase), 2) == 1).astype(np.float32)
    if garment.pattern == "band":  # a colour-blocked band around torso and sleeves, at chest to belly height
        return (np.abs(layer.by - (person.head_size + 0.08 + 0.16 * phase)) < s * 0.6).astype(np.float32)
    if surface != "upper" or view != "front":
        return np.zeros_like(layer.alpha)
    size = s * 0.9
    dx, dy = layer.bx, layer.by - (person.head_size + 0.13)
    shape = {
        "disc": np.hypot(dx, dy) < size,
        "square": np.maximum(np.abs(dx), np.abs(dy)) < size * 0.85,
        "triangle": (dy < size * 0.8) & (np.abs(dx) < (dy + size) * 0.6),
        "bar": (np.abs(dx) < size * 1.4) & (np.abs(dy) < size * 0.35),
    }[garment.logo]
    return shape.astype(np.float32)


def _colour_of(person: Person, surface: str) -> np.ndarray:
    garment = _garment_of(person, surface)
    if garment is not None:
        return np.array(garment.colour, dtype=np.float32)
    accessory = _accessory_of(person, surface)
    if accessory is not None:
        return np.array(accessory.colour, dtype=np.float32)
    if surface == "shoe":
        return np.array(person.shoes, dtype=np.float32) * 0.6
    if surface == "hair":
        return np.array(person.hair_colour, dtype=np.float32)
    return np.array(person.skin, dtype=np.float32)


def _dyed(person: Person, surface: str, printed: np.ndarray) -> np.ndarray:
    """[h, w, 3] dye colour with the print applied."""
    base = _colour_of(person, surface)
    garment = _garment_of(person, surface)
    if garment is None:
        return np.broadcast_to(base, printed.shape + (3,))
    ink = np.array(garment.pattern_colour, dtype=np.float32)
    return base + (ink - base) * printed[..., None]


def _dye_luminance(person: Person, surface: str, printed: np.ndarray) -> np.ndarray:
    """[h, w] luminance of the dye with the print applied (what sunlight and NIR respond to; never hue)."""
    return _dyed(person, surface, printed) @ _LUMA


def _texture(person: Person, surface: str, layer: Layer) -> tuple[Material, np.ndarray, np.ndarray]:
    """The material, its fine texture (amplitude included) and its structure field (amplitude 1)."""
    material, seed = material_of(person, surface)
    texture = sample_texture(seed, layer.bx, layer.by, material.texture_scale) * material.texture
    return material, texture, structure_field(material, layer.bx, layer.by)


def visible_rgb(person: Person, surface: str, layer: Layer, view: str, light: float) -> np.ndarray:
    """[h, w, 3] linear RGB of the layer before the camera's light and optics."""
    material, texture, structure = _texture(person, surface, layer)
    colour = _dyed(person, surface, print_mask(person, surface, layer, view))
    v = layer.v
    shade = (0.55 + 0.4 * np.sqrt(1 - v * v) + 0.15 * light * v) * (1 + material.structure_depth * structure)
    highlight = material.sheen * np.exp(-((v + 0.4 * light) ** 2) / 0.04)
    out = colour * (shade * (1 + texture))[..., None] + highlight[..., None]
    return out.astype(np.float32)


def surface_temperature(person: Person, surface: str, ambient: float) -> float:
    """Physical surface temperature (normalised) of a surface; independent of any colour."""
    skin = SKIN_TEMPERATURE + person.skin_warmth
    if surface in _SKIN_SURFACES:
        return skin + _SKIN_SURFACES[surface]
    if surface == "hair":
        return skin - HAIR.insulation * (0.45 + 0.25 * person.hair_length)
    garment = _garment_of(person, surface)
    if garment is not None:  # heat flows through the garment's resistance: surface between skin and air
        material = GARMENT_MATERIALS[garment.material]
        resistance = 6.0 * material.insulation * garment.thickness * _STYLE_THICKNESS[garment.style]
        return ambient + (skin - ambient) / (1 + resistance)
    material, _ = material_of(person, surface)  # accessories, shoes: mostly at ambient
    return ambient + (1 - material.insulation) * (skin - ambient) * 0.9


def thermal_radiance(person: Person, surface: str, layer: Layer, view: str, ambient: float,
                     print_contrast: float, solar_load: float = 0.0) -> np.ndarray:
    """[h, w] apparent temperature: emissivity-weighted, cooler at grazing angles, prints lower the
    emissivity by ``print_contrast``; with ``solar_load`` > 0, sunlit fabric is warmed by the light its dye
    absorbs (dark cloth warmer than light cloth, as outdoor thermal cameras see). Absorption depends on the
    dye's luminance only, so changing a hue at equal luminance never changes the image."""
    material, texture, structure = _texture(person, surface, layer)
    printed = print_mask(person, surface, layer, view)
    temperature = surface_temperature(person, surface, ambient)
    if solar_load > 0 and (_garment_of(person, surface) is not None or _accessory_of(person, surface) is not None):
        temperature = temperature + SOLAR_GAIN * solar_load * (1.0 - _dye_luminance(person, surface, printed))
    if material.structure == "quilted":  # stitched seams leak body heat: warm lines between baffles
        relief = -0.7 * np.minimum(structure, 0)
    else:  # ridges and creases: thinner fabric in the grooves
        relief = -0.2 * structure
    temperature = temperature + material.structure_depth * relief * (temperature - ambient)
    emissivity = material.emissivity * (1 - print_contrast * printed)
    radiance = emissivity * temperature + (1 - emissivity) * ambient
    rim = 0.8 + 0.2 * np.sqrt(1 - layer.v * layer.v)
    return (ambient + (radiance - ambient) * rim + 0.25 * texture).astype(np.float32)


def nir_reflectance(person: Person, surface: str, layer: Layer, view: str) -> np.ndarray:
    """[h, w] near-infrared reflectance of the layer before the camera's illumination."""
    material, texture, structure = _texture(person, surface, layer)
    luminance = _dye_luminance(person, surface, print_mask(person, surface, layer, view))
    t = material.dye_transparency
    if surface in _SKIN_SURFACES:
        reflectance = material.nir_reflectance + 0.15 * (luminance - 0.5)
    else:
        reflectance = t * material.nir_reflectance + (1 - t) * luminance
    shade = 0.6 + 0.4 * np.sqrt(1 - layer.v * layer.v)
    shade = shade * (1 + material.structure_depth * structure)
    return (reflectance * shade * (1 + texture)).astype(np.float32)
