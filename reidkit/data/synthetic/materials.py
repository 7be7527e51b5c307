"""Surface materials: how each looks in visible light, near-infrared and thermal infrared.

The visible colour of a garment is a property of the *person* (its dye); everything here is a property of
the *material* and is independent of colour. That is what makes colour unrecoverable from thermal images
(the thermal renderer never reads a colour) while shape, material and print remain.

Units are normalised: temperatures and reflectances in [0, 1] before a camera maps them to pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Material:
    """Physical response of one surface type.

    Attributes:
        name: material name (for docs and debugging).
        insulation: how much cooler than skin the outer surface of one unit of thickness is (thermal).
        emissivity: thermal emissivity; low values (leather, nylon shells) look cooler than they are.
        nir_reflectance: reflectance at ~850 nm of the undyed fibre.
        dye_transparency: how transparent the dye is in near-infrared (1 = colour invisible in NIR,
            0 = NIR follows visible luminance). Real dyes vary this way, so NIR is related to but not a
            fixed function of luminance.
        texture: amplitude of the fine material texture (weave, knit, grain), in every modality.
        texture_scale: period of that texture in body units (person height = 1).
        sheen: specular highlight strength in visible light (leather, synthetic shells).
        structure: the material's visible construction, seen by every camera: ``"none"``, ``"ribs"``
            (knit, vertical), ``"twill"`` (denim, diagonal), ``"quilted"`` (padded shell: horizontal baffles
            whose stitched seams leak heat), ``"grain"`` (leather creases).
        structure_scale: period of that structure in body units.
        structure_depth: its strength (shading in visible and NIR, temperature in thermal).
    """

    name: str
    insulation: float
    emissivity: float
    nir_reflectance: float
    dye_transparency: float
    texture: float
    texture_scale: float
    sheen: float
    structure: str = "none"
    structure_scale: float = 0.05
    structure_depth: float = 0.0


#: garment materials; indices are stored in :class:`~reidkit.data.synthetic.people.Garment`
GARMENT_MATERIALS: tuple[Material, ...] = (
    Material("cotton", insulation=0.18, emissivity=0.96, nir_reflectance=0.70, dye_transparency=0.65,
             texture=0.03, texture_scale=0.010, sheen=0.00),
    Material("wool", insulation=0.42, emissivity=0.95, nir_reflectance=0.60, dye_transparency=0.40,
             texture=0.09, texture_scale=0.018, sheen=0.00, structure="ribs", structure_scale=0.035,
             structure_depth=0.25),
    Material("denim", insulation=0.28, emissivity=0.94, nir_reflectance=0.45, dye_transparency=0.25,
             texture=0.07, texture_scale=0.008, sheen=0.02, structure="twill", structure_scale=0.04,
             structure_depth=0.15),
    Material("leather", insulation=0.34, emissivity=0.78, nir_reflectance=0.30, dye_transparency=0.10,
             texture=0.02, texture_scale=0.025, sheen=0.30, structure="grain", structure_scale=0.09,
             structure_depth=0.12),
    Material("nylon", insulation=0.48, emissivity=0.70, nir_reflectance=0.55, dye_transparency=0.80,
             texture=0.04, texture_scale=0.040, sheen=0.18, structure="quilted", structure_scale=0.075,
             structure_depth=0.45),
    Material("fleece", insulation=0.55, emissivity=0.97, nir_reflectance=0.75, dye_transparency=0.55,
             texture=0.12, texture_scale=0.014, sheen=0.00),
)

#: materials of accessories (bags, backpacks, hats) and shoes
ACCESSORY_MATERIALS: tuple[Material, ...] = (
    Material("canvas", insulation=0.75, emissivity=0.93, nir_reflectance=0.60, dye_transparency=0.50,
             texture=0.06, texture_scale=0.012, sheen=0.00),
    Material("plastic", insulation=0.85, emissivity=0.85, nir_reflectance=0.40, dye_transparency=0.20,
             texture=0.01, texture_scale=0.030, sheen=0.25),
    Material("leather-goods", insulation=0.80, emissivity=0.80, nir_reflectance=0.30, dye_transparency=0.10,
             texture=0.02, texture_scale=0.025, sheen=0.30),
)

SKIN = Material("skin", insulation=0.0, emissivity=0.98, nir_reflectance=0.62, dye_transparency=0.0,
                texture=0.015, texture_scale=0.012, sheen=0.05)
HAIR = Material("hair", insulation=0.30, emissivity=0.92, nir_reflectance=0.35, dye_transparency=0.35,
                texture=0.08, texture_scale=0.006, sheen=0.10)

#: skin surface temperature (normalised); garments are cooler by insulation x thickness
SKIN_TEMPERATURE = 0.92


def structure_field(material: Material, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """[h, w] the material's construction at body coordinates, in [-1, 1] (0 where it has none).

    Quilted shells are -1 on their stitched seams and bulge between them; ribs and twill are periodic
    ridges; leather grain is a coarse crease texture.
    """
    s = material.structure_scale
    if material.structure == "quilted":
        phase = np.mod(by / s, 1.0)
        return np.where(phase < 0.18, -1.0, np.sin(np.pi * (phase - 0.18) / 0.82)).astype(np.float32)
    if material.structure == "ribs":
        return np.sin(2 * np.pi * bx / s).astype(np.float32)
    if material.structure == "twill":
        return np.sin(2 * np.pi * (bx + by) / s).astype(np.float32)
    if material.structure == "grain":
        return sample_texture(99, bx, by, s / 8)
    return np.zeros_like(bx, dtype=np.float32)


def texture_field(seed: int, size: int = 64) -> np.ndarray:
    """A tileable [size, size] zero-mean noise texture in [-1, 1], the same for a given seed.

    Each material samples it at its own scale in body coordinates, so the texture moves with the person
    and is identical in every modality (a weave is a weave, whatever its colour).
    """
    rng = np.random.default_rng([7919, seed])
    spectrum = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    spectrum *= np.exp(-((radius - 0.18) ** 2) / 0.01)  # band-pass: a fabric-like grain
    field = np.real(np.fft.ifft2(spectrum))
    return (field / (np.abs(field).max() + 1e-9)).astype(np.float32)


_TEXTURES: dict[int, np.ndarray] = {}


def sample_texture(material_seed: int, bx: np.ndarray, by: np.ndarray, scale: float) -> np.ndarray:
    """The material texture at body coordinates ``bx``, ``by`` (same shapes); values in [-1, 1]."""
    tex = _TEXTURES.get(material_seed)
    if tex is None:
        tex = _TEXTURES.setdefault(material_seed, texture_field(material_seed))
    n = tex.shape[0]
    i = np.floor(by / scale).astype(np.int64) % n
    j = np.floor(bx / scale).astype(np.int64) % n
    return tex[i, j]
