"""Cameras and captures: everything that changes from one image of a person to the next.

A :class:`Camera` is fixed for a dataset (its scene, light, typical viewpoints, blur); a :class:`Capture`
is one moment in front of one camera (view, walking phase, framing, occluder, light jitter, noise seed).
For aligned multi-modality presets one capture is rendered by every modality, so the geometry matches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reidkit.data.synthetic.people import Person
from reidkit.data.synthetic.presets import Knobs

VIEWS = ("front", "back", "side")
# per camera slot: probabilities of front / back / side; cameras see people from their own angles
_VIEW_MIX = ((0.6, 0.2, 0.2), (0.2, 0.3, 0.5), (0.25, 0.55, 0.2), (0.35, 0.3, 0.35))


@dataclass(frozen=True)
class SceneObject:
    """A rectangle of the background (door, window, pole, sign, hedge, lamp) in scene pixels."""

    x0: float
    x1: float
    y0: float
    y1: float
    colour: tuple[float, float, float]
    temperature: float  # offset from ambient (thermal)
    nir: float  # near-infrared reflectance


@dataclass(frozen=True)
class Camera:
    """One camera: scene, light and optics. ``seed`` drives its fixed pattern noise and textures."""

    cam_id: int
    seed: int
    view_p: tuple[float, float, float]
    outdoor: bool
    horizon: float  # fraction of the image height where wall/sky meets floor/ground
    wall: tuple[float, float, float]
    floor: tuple[float, float, float]
    objects: tuple[SceneObject, ...]
    ambient: float  # thermal ambient temperature (normalised)
    floor_temperature: float  # floor/ground offset from ambient
    nir_wall: float
    nir_floor: float
    brightness: float
    cast: tuple[float, float, float]  # colour gains of the light
    blur: float  # multiplier of the blur knobs
    illuminator: float  # strength of the NIR camera's own light (centre bright, edges dim)


@dataclass(frozen=True)
class Occluder:
    """Something between the camera and the person: ``kind`` pole, box (bin, bench, car) or passer."""

    kind: str
    x0: float
    x1: float
    y0: float
    y1: float
    colour: tuple[float, float, float]
    temperature: float  # offset from ambient (a passer-by is warm)
    nir: float


@dataclass(frozen=True)
class Capture:
    """One moment of one person in front of one camera (pixel units for the framing)."""

    camera: int
    view: str
    facing: int  # +1 / -1: mirror of the view (which way the person walks or turns)
    phase: float  # walking phase in radians
    stride: float  # swing amplitude in radians
    cx: float  # horizontal centre of the body
    top: float  # y of the top of the head
    scale: float  # pixel height of the whole person
    scene_shift: float  # horizontal offset into the camera's (wider) scene
    occluder: Occluder | None
    brightness: float
    cast: tuple[float, float, float]
    light: float  # -1..1 side the light comes from (visible shading)
    seed: int  # noise and AGC jitter


def _uniform_rgb(rng: np.random.Generator, low: float, high: float) -> tuple[float, float, float]:
    base = rng.uniform(low, high)
    tint = rng.normal(0, 0.06, 3)
    return tuple(float(np.clip(base + t, 0, 1)) for t in tint)


def make_camera(seed: int, cam_id: int, slot: int, width: int, height: int, knobs: Knobs) -> Camera:
    """Camera ``cam_id``; ``slot`` (its position among its modality's cameras) picks its view mix."""
    rng = np.random.default_rng([seed, 3, cam_id])
    outdoor = bool(slot % 2)
    mix = np.array(_VIEW_MIX[slot % len(_VIEW_MIX)])
    mix = knobs.view_mix * mix + (1 - knobs.view_mix) * np.array([1.0, 0.0, 0.0])
    scene_w = 2 * width
    objects = []
    for _ in range(int(round(rng.integers(3, 8) * knobs.clutter))):
        x0 = rng.uniform(-5, scene_w)
        w = rng.uniform(3, width * 0.5)
        y0 = rng.uniform(-5, height * 0.7)
        h = rng.uniform(6, height * 0.6)
        warm = rng.random() < 0.15  # a lamp, vent or engine: a thermal distractor
        objects.append(SceneObject(x0, x0 + w, y0, y0 + h, _uniform_rgb(rng, 0.1, 0.85),
                                   float(rng.uniform(0.25, 0.45) if warm else rng.normal(0, 0.05)),
                                   float(rng.uniform(0.15, 0.85))))
    cast = np.clip(1 + rng.normal(0, 0.12, 3) * knobs.illumination, 0.6, 1.4)
    return Camera(
        cam_id=cam_id, seed=int(rng.integers(2**31)), view_p=tuple(float(p) for p in mix / mix.sum()),
        outdoor=outdoor, horizon=float(rng.uniform(0.55, 0.8)),
        wall=_uniform_rgb(rng, 0.3, 0.8), floor=_uniform_rgb(rng, 0.15, 0.6), objects=tuple(objects),
        ambient=float(rng.uniform(0.12, 0.25) if outdoor else rng.uniform(0.28, 0.4)),
        floor_temperature=float(rng.normal(0, 0.04)), nir_wall=float(rng.uniform(0.3, 0.7)),
        nir_floor=float(rng.uniform(0.2, 0.5)), brightness=float(rng.uniform(0.7, 1.1)),
        cast=tuple(float(c) for c in cast), blur=float(rng.uniform(0.7, 1.4)),
        illuminator=float(rng.uniform(0.2, 0.5)),
    )


def _occluder(rng: np.random.Generator, width: int, height: int) -> Occluder:
    kind = ("pole", "box", "passer")[rng.choice(3, p=[0.3, 0.45, 0.25])]
    if kind == "pole":
        x0 = rng.uniform(0, width - 4)
        x1, y0, y1 = x0 + rng.uniform(3, 8), -1.0, height + 1.0
    elif kind == "box":
        x0 = rng.uniform(-width * 0.3, width * 0.4)
        x1, y0, y1 = x0 + rng.uniform(width * 0.5, width * 1.0), height * rng.uniform(0.6, 0.82), height + 1.0
    else:  # another person crossing at the image edge
        side = rng.choice([-1, 1])
        w = rng.uniform(width * 0.18, width * 0.35)
        x0 = -2.0 if side < 0 else width - w
        x1, y0, y1 = x0 + w + 2, height * rng.uniform(0.05, 0.3), height + 1.0
    temperature = rng.uniform(0.3, 0.5) if kind == "passer" else rng.normal(0, 0.06)
    return Occluder(kind, float(x0), float(x1), float(y0), float(y1), _uniform_rgb(rng, 0.05, 0.8),
                    float(temperature), float(rng.uniform(0.15, 0.8)))


def sample_capture(rng: np.random.Generator, person: Person, camera: Camera, width: int, height: int,
                   knobs: Knobs) -> Capture:
    """Draw one capture of ``person`` by ``camera``; ``knobs`` scale the variation."""
    j = knobs.pose_jitter
    view = VIEWS[rng.choice(3, p=camera.view_p)]
    scale = height * person.stature * (1 - 0.12 * j * rng.random())
    if rng.random() < 0.06 * j:  # tight crop: the detector box cut the feet or the head
        scale *= rng.uniform(1.08, 1.2)
    top = (height - scale) / 2 + rng.normal(0, 0.03 * height * j)
    if scale > height:
        top = rng.choice([0.0, height - scale]) + rng.normal(0, 2 * j)
    occluder = _occluder(rng, width, height) if rng.random() < knobs.occlusion else None
    return Capture(
        camera=camera.cam_id, view=view, facing=int(rng.choice([-1, 1])),
        phase=float(rng.uniform(0, 2 * np.pi)), stride=float(0.5 * j * rng.uniform(0.3, 1.0)),
        cx=float(width / 2 + rng.normal(0, 0.06 * width * j)), top=float(top), scale=float(scale),
        scene_shift=float(rng.uniform(0, width)), occluder=occluder,
        brightness=float(camera.brightness * np.exp(rng.normal(0, 0.15 * knobs.illumination))),
        cast=tuple(float(c * np.exp(rng.normal(0, 0.04 * knobs.illumination))) for c in camera.cast),
        light=float(rng.uniform(-1, 1)), seed=int(rng.integers(2**31)),
    )
