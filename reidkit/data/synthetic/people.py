"""Identities: the persistent attributes of one synthetic person.

A :class:`Person` holds everything that stays the same across that person's images: body proportions,
garments (style, colour, print, material, thickness), hair, skin and accessories. Colour lives only in
``colour`` fields; material, thickness and print live elsewhere, so :func:`recolour` can change what a
visible camera sees while leaving what a thermal camera sees untouched.

Sampling is keyed by ``(seed, split, index)``, so an identity does not depend on how many others are drawn.
"""
from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass

import numpy as np

from reidkit.data.synthetic.materials import ACCESSORY_MATERIALS, GARMENT_MATERIALS
from reidkit.data.synthetic.presets import Knobs

RGB = tuple[float, float, float]

UPPER_STYLES = ("tshirt", "longsleeve", "jacket", "coat")
LOWER_STYLES = ("trousers", "shorts", "skirt")
PATTERNS = ("plain", "stripes", "vstripes", "checks", "logo", "band")
LOGO_SHAPES = ("disc", "square", "triangle", "bar")

#: how likely each material (GARMENT_MATERIALS order: cotton, wool, denim, leather, nylon, fleece) is for a
#: style. Materials follow the garment type as in real wardrobes, so a visible camera that sees the style
#: and the fabric's construction can predict what a thermal camera sees, without any colour.
STYLE_MATERIALS = {
    "tshirt": (0.8, 0.1, 0.0, 0.0, 0.0, 0.1), "longsleeve": (0.45, 0.35, 0.0, 0.0, 0.0, 0.2),
    "jacket": (0.0, 0.0, 0.3, 0.3, 0.3, 0.1), "coat": (0.0, 0.55, 0.0, 0.1, 0.35, 0.0),
    "trousers": (0.35, 0.15, 0.5, 0.0, 0.0, 0.0), "shorts": (0.6, 0.0, 0.4, 0.0, 0.0, 0.0),
    "skirt": (0.4, 0.3, 0.2, 0.1, 0.0, 0.0),
}

# (name, rgb, weight): street clothing is mostly dark and muted, which keeps visible matching honest
_GARMENT_PALETTE = (
    ("black", (0.07, 0.07, 0.08), 5), ("charcoal", (0.22, 0.22, 0.24), 3), ("grey", (0.50, 0.50, 0.52), 3),
    ("white", (0.90, 0.90, 0.88), 3), ("navy", (0.10, 0.14, 0.32), 3), ("blue", (0.18, 0.35, 0.70), 2),
    ("sky", (0.52, 0.68, 0.86), 1), ("red", (0.72, 0.12, 0.12), 2), ("maroon", (0.40, 0.08, 0.12), 1),
    ("green", (0.15, 0.45, 0.22), 1), ("olive", (0.38, 0.40, 0.18), 1), ("khaki", (0.72, 0.64, 0.45), 2),
    ("brown", (0.40, 0.26, 0.15), 2), ("yellow", (0.88, 0.76, 0.18), 1), ("pink", (0.90, 0.55, 0.66), 1),
    ("purple", (0.40, 0.22, 0.52), 1), ("orange", (0.90, 0.46, 0.12), 1), ("teal", (0.10, 0.45, 0.48), 1),
)
_NEUTRALS = tuple(c for c in _GARMENT_PALETTE if c[0] in ("black", "charcoal", "grey", "white", "navy", "khaki"))
_SKIN_TONES = ((0.96, 0.80, 0.69), (0.89, 0.69, 0.55), (0.78, 0.57, 0.42), (0.62, 0.42, 0.29),
               (0.45, 0.30, 0.20), (0.30, 0.20, 0.14))
_HAIR_COLOURS = ((0.05, 0.04, 0.04), (0.20, 0.13, 0.08), (0.42, 0.28, 0.15), (0.75, 0.62, 0.38),
                 (0.55, 0.55, 0.55), (0.50, 0.18, 0.08))


@dataclass(frozen=True)
class Garment:
    """One garment. ``colour``/``pattern_colour`` are seen only in visible light (and, through the dye's
    NIR transparency, partly in near-infrared); the other fields are physical and seen by every camera."""

    style: str
    colour: RGB
    pattern: str
    pattern_colour: RGB
    pattern_scale: float  # period of stripes / checks, or logo size, in body units
    logo: str
    material: int  # index into GARMENT_MATERIALS
    pattern_offset: float  # phase of stripes / checks, height of a chest band (0..1)
    thickness: float  # 0.7 (thin) .. 1.3 (thick): scales the insulation of the style and material


@dataclass(frozen=True)
class Accessory:
    """A backpack, bag or hat; ``side`` is -1 / +1 for a shoulder bag (which hip it hangs at)."""

    kind: str
    colour: RGB
    material: int  # index into ACCESSORY_MATERIALS
    size: float
    side: int = 1


@dataclass(frozen=True)
class Person:
    """Persistent attributes of one identity (body units: the person's height is 1)."""

    pid: int
    build: float  # width multiplier of the whole body
    shoulders: float  # shoulder half-width
    leg_length: float  # hip-to-sole fraction of height
    head_size: float  # head height
    stature: float  # how much of the frame the person fills (taller people are cropped tighter)
    skin: RGB
    skin_warmth: float  # skin temperature offset (thermal only)
    hair_colour: RGB
    hair_length: int  # 0 short, 1 medium, 2 long
    upper: Garment
    lower: Garment
    sleeves: Garment | None  # colour-blocked sleeves of another fabric (varsity jackets, raglans)
    shoes: RGB
    backpack: Accessory | None
    bag: Accessory | None
    hat: Accessory | None


def _rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1 if split == "train" else 2, index, stream])


def _colour(rng: np.random.Generator, vivid: float = 1.0) -> RGB:
    """A dye: from the whole palette with probability ``vivid``, else from its neutral part."""
    palette = _GARMENT_PALETTE if rng.random() < vivid else _NEUTRALS
    weights = np.array([w for *_, w in palette], dtype=float)
    _, rgb, _ = palette[rng.choice(len(weights), p=weights / weights.sum())]
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    h = (h + rng.normal(0, 0.02)) % 1.0
    s = float(np.clip(s * rng.uniform(0.8, 1.15), 0, 1))
    v = float(np.clip(v * rng.uniform(0.8, 1.15), 0.03, 1))
    return tuple(round(c, 4) for c in colorsys.hsv_to_rgb(h, s, v))


def _spread(rng: np.random.Generator, low: float, high: float, diversity: float) -> float:
    """A value around the middle of [low, high]; ``diversity`` = 1 spans the whole range."""
    mid, half = (low + high) / 2, (high - low) / 2
    return float(mid + half * diversity * rng.uniform(-1, 1))


def _garment(rng: np.random.Generator, styles: tuple[str, ...], style_p: list[float], diversity: float,
             pattern_p: list[float], vivid: float = 1.0) -> Garment:
    """``pattern_p``: probabilities of the non-plain PATTERNS; plain takes the rest."""
    style = styles[rng.choice(len(styles), p=style_p)]
    p = np.array([1 - sum(pattern_p)] + list(pattern_p))
    pattern = PATTERNS[rng.choice(len(PATTERNS), p=p / p.sum())]
    weights = np.array(STYLE_MATERIALS[style], dtype=float)
    material = int(rng.choice(len(GARMENT_MATERIALS), p=weights / weights.sum()))
    return Garment(
        style=style, colour=_colour(rng, vivid), pattern=pattern, pattern_colour=_colour(rng),
        pattern_scale=float(rng.uniform(0.06, 0.13)), logo=LOGO_SHAPES[rng.integers(len(LOGO_SHAPES))],
        material=material, pattern_offset=float(rng.random()), thickness=_spread(rng, 0.7, 1.3, diversity),
    )


def _accessory(rng: np.random.Generator, kind: str, p: float) -> Accessory | None:
    if rng.random() >= p:
        return None
    return Accessory(kind, _colour(rng), int(rng.integers(len(ACCESSORY_MATERIALS))),
                     float(rng.uniform(0.8, 1.2)), int(rng.choice([-1, 1])))


def sample_person(seed: int, split: str, index: int, pid: int, knobs: Knobs) -> Person:
    """Draw one identity; the same arguments always give the same person."""
    rng = _rng(seed, split, index, 0)
    d = knobs.diversity
    # non-plain pattern probabilities: stripes, vertical stripes, checks, logo, chest band
    vivid = knobs.colour_diversity
    upper_prints = knobs.print_share * np.array([0.24, 0.14, 0.2, 0.21, 0.21])
    lower_prints = knobs.print_share * np.array([0.14, 0.16, 0.14, 0.0, 0.0])
    upper = _garment(rng, UPPER_STYLES, [0.35, 0.25, 0.25, 0.15], d, list(upper_prints), vivid)
    lower = _garment(rng, LOWER_STYLES, [0.7, 0.18, 0.12], d, list(lower_prints), vivid)
    sleeves = None
    if upper.style != "tshirt" and rng.random() < 0.3:
        sleeves = dataclasses.replace(_garment(rng, UPPER_STYLES, [1, 0, 0, 0], d, [0, 0, 0, 0, 0], vivid),
                                      style=upper.style, thickness=upper.thickness)
    return Person(
        pid=pid, build=_spread(rng, 0.85, 1.2, d), shoulders=_spread(rng, 0.10, 0.14, d),
        leg_length=_spread(rng, 0.44, 0.52, d), head_size=_spread(rng, 0.115, 0.145, d),
        stature=_spread(rng, 0.86, 0.98, d), sleeves=sleeves, skin=_SKIN_TONES[rng.integers(len(_SKIN_TONES))],
        skin_warmth=_spread(rng, -0.04, 0.04, d), hair_colour=_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))],
        hair_length=int(rng.choice(3, p=[0.45, 0.3, 0.25])), upper=upper, lower=lower,
        shoes=_colour(rng), backpack=_accessory(rng, "backpack", 0.3), bag=_accessory(rng, "bag", 0.25),
        hat=_accessory(rng, "hat", 0.15),
    )


def recolour(person: Person, rng: np.random.Generator) -> Person:
    """The same person with every colour re-drawn (garments, prints, shoes, accessories, hair, skin tone)
    and every physical attribute kept: identical to a thermal camera, different to a visible one."""
    def garment(g: Garment) -> Garment:
        return dataclasses.replace(g, colour=_colour(rng), pattern_colour=_colour(rng))

    def accessory(a: Accessory | None) -> Accessory | None:
        return None if a is None else dataclasses.replace(a, colour=_colour(rng))

    return dataclasses.replace(
        person, upper=garment(person.upper), lower=garment(person.lower),
        sleeves=None if person.sleeves is None else garment(person.sleeves), shoes=_colour(rng),
        skin=_SKIN_TONES[rng.integers(len(_SKIN_TONES))], hair_colour=_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))],
        backpack=accessory(person.backpack), bag=accessory(person.bag), hat=accessory(person.hat),
    )


_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _rotate_hue(rgb: RGB, angle: float) -> RGB:
    """``rgb`` with its chroma turned by ``angle`` (radians) in YIQ space: the luminance Y is unchanged."""
    y, i, q = _YIQ @ np.asarray(rgb, dtype=float)
    c, s = np.cos(angle), np.sin(angle)
    out = np.linalg.solve(_YIQ, np.array([y, c * i - s * q, s * i + c * q]))
    return tuple(float(v) for v in out)


def rehue(person: Person, rng: np.random.Generator) -> Person:
    """The same person with every garment, print and accessory hue turned (luminance kept): what no
    thermal camera can see even with ``solar_load`` (which depends on a dye's luminance only)."""
    def turn(rgb: RGB) -> RGB:
        return _rotate_hue(rgb, float(rng.uniform(0.6, 2 * np.pi - 0.6)))

    def garment(g: Garment) -> Garment:
        return dataclasses.replace(g, colour=turn(g.colour), pattern_colour=turn(g.pattern_colour))

    def accessory(a: Accessory | None) -> Accessory | None:
        return None if a is None else dataclasses.replace(a, colour=turn(a.colour))

    return dataclasses.replace(
        person, upper=garment(person.upper), lower=garment(person.lower),
        sleeves=None if person.sleeves is None else garment(person.sleeves),
        backpack=accessory(person.backpack), bag=accessory(person.bag), hat=accessory(person.hat),
    )


def _lookalike(model: Person, own: Person, rng: np.random.Generator, knobs: Knobs) -> Person:
    """``model``'s thermal signature (jittered a little) in ``own``'s colours, under ``own``'s id."""
    j = knobs.lookalike_jitter * knobs.diversity

    def nudge(value: float, low: float, high: float) -> float:
        return float(np.clip(value + (high - low) / 2 * j * rng.uniform(-1, 1), low, high))

    def garment(shape: Garment, colours: Garment) -> Garment:
        return dataclasses.replace(shape, colour=colours.colour, pattern_colour=colours.pattern_colour,
                                   thickness=nudge(shape.thickness, 0.7, 1.3))

    def accessory(shape: Accessory | None, colours: Accessory | None) -> Accessory | None:
        if shape is None:
            return None
        return dataclasses.replace(shape, colour=colours.colour if colours else _colour(rng))

    return dataclasses.replace(
        model, pid=own.pid, build=nudge(model.build, 0.85, 1.2), shoulders=nudge(model.shoulders, 0.10, 0.14),
        leg_length=nudge(model.leg_length, 0.44, 0.52), head_size=nudge(model.head_size, 0.115, 0.145),
        skin=own.skin, hair_colour=own.hair_colour, shoes=own.shoes,
        upper=garment(model.upper, own.upper), lower=garment(model.lower, own.lower),
        sleeves=None if model.sleeves is None else garment(model.sleeves, own.sleeves or own.upper),
        backpack=accessory(model.backpack, own.backpack), bag=accessory(model.bag, own.bag),
        hat=accessory(model.hat, own.hat),
    )


def lookalike_models(seed: int, split: str, count: int, share: float) -> dict[int, int]:
    """``{index: model index}`` of the identities (positions in a split) that are thermal lookalikes."""
    flags = [_rng(seed, split, i, 1).random() < share for i in range(count)]
    models = [i for i, f in enumerate(flags) if not f]
    if not models:
        return {}
    return {i: models[_rng(seed, split, i, 2).integers(len(models))] for i, f in enumerate(flags) if f}


def sample_people(seed: int, split: str, pids: list[int], knobs: Knobs) -> list[Person]:
    """The identities of one split; a ``knobs.lookalike_share`` fraction of them are thermal lookalikes
    of another identity of the same split (see :class:`~reidkit.data.synthetic.presets.Knobs`)."""
    people = [sample_person(seed, split, i, pid, knobs) for i, pid in enumerate(pids)]
    out = list(people)
    for i, model in lookalike_models(seed, split, len(pids), knobs.lookalike_share).items():
        out[i] = _lookalike(people[model], people[i], _rng(seed, split, i, 3), knobs)
    return out
