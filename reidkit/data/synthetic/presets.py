"""Presets and the difficulty knobs of the synthetic generator.

A :class:`Preset` says *how much* to generate (identities, cameras, captures, modalities); its
:class:`Knobs` say *how hard* the images are. ``generate(preset, output, **knobs)`` overrides single knobs,
which is how ``benchmarks/synthetic_calibration.py`` tuned the defaults (see ``docs/synthetic.md``).

Bump :data:`GENERATOR_VERSION` whenever a change alters the pixels a seed produces: the cache is keyed by it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

#: part of the cache key; bump when the same (preset, seed, knobs) would give different images
GENERATOR_VERSION = 4


@dataclass(frozen=True)
class Knobs:
    """Difficulty knobs. Every field is a generator option (``generate(..., knob=value)``).

    Identity knobs (how people differ):
        diversity: spread of continuous identity attributes (body proportions, garment thickness,
            skin temperature) as a fraction of their full range; lower = more alike people.
        lookalike_share: fraction of identities that copy another identity's *thermal signature*
            (body, garment materials/thickness/patterns, accessories, hair length) and re-draw only
            colours. They are told apart in visible light but barely in infrared: the knob that sets
            how hard cross-modality matching is, without touching visible-to-visible matching.
        lookalike_jitter: how far (fraction of ``diversity``) a lookalike's body/thickness drift from
            its model.
        colour_diversity: fraction of garments dyed from the whole palette; the rest are black, charcoal,
            grey, white, navy or khaki, as most street clothing is. Lower values move identity
            information from colour (visible only) to shape, print and material (seen by every camera).
        print_share: probability that an upper garment carries a print (stripes, checks, logo, band);
            lower garments get prints at 0.44 times that rate. Prints are seen by every camera.
    Per-image knobs (how one person's images differ):
        pose_jitter: scale of position / size / crop / arm-leg swing variation (0 = centred, static).
        view_mix: 0 = every camera sees only frontal views, 1 = each camera's own view mix
            (front / back / side), which hides logos, backpacks and bags in some views.
        occlusion: probability that an object (pole, bin, car, another body) hides part of the person.
        clutter: amount of background structure (0 = flat background).
        illumination: spread of per-image brightness and colour cast around the camera's own.
        blur: Gaussian blur sigma in pixels for visible light (infrared cameras add ``thermal_blur``).
        noise: sensor noise standard deviation (0-1 intensity units) for visible light.
        thermal_blur: extra blur of infrared/thermal cameras ("lower detail").
        thermal_noise: noise of infrared/thermal cameras (plus column fixed-pattern noise).
        pattern_contrast: emissivity contrast of garment prints in infrared (stripes, checks, logos).
        agc_jitter: spread of the infrared camera's automatic gain (per-image contrast changes).
        solar_load: how much sunlight warms fabric by the light its dye absorbs (0 = none): dark
            garments and prints look warmer in infrared. It depends on a dye's luminance, never its hue.
    """

    diversity: float = 1.0
    lookalike_share: float = 0.0
    lookalike_jitter: float = 0.15
    colour_diversity: float = 0.3
    print_share: float = 0.9
    pose_jitter: float = 0.5
    view_mix: float = 0.2
    occlusion: float = 0.0
    clutter: float = 0.5
    illumination: float = 1.0
    blur: float = 0.5
    noise: float = 0.02
    thermal_blur: float = 0.2
    thermal_noise: float = 0.01
    pattern_contrast: float = 0.6
    agc_jitter: float = 0.3
    solar_load: float = 1.0

    def replace(self, **overrides: float) -> Knobs:
        """A copy with some knobs changed; unknown names raise ``TypeError`` listing the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown synthetic knob(s) {unknown}; known: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **{k: float(v) for k, v in overrides.items()})


@dataclass(frozen=True)
class Preset:
    """What to generate.

    Attributes:
        name: the preset's name (``dataset_args.preset``).
        modalities: modality names; the renderer for each is chosen by name (``visible``, ``infrared``,
            ``nir``, ``tir``).
        cameras: camera ids per modality. With ``aligned`` every modality uses the same camera ids.
        aligned: one capture per (identity, camera, index) rendered in every modality with the same
            geometry and the same file stem (RGBNT201-like); otherwise each camera belongs to one
            modality and renders only it (SYSU-like).
        train_ids / test_ids: identity counts (disjoint; test ids follow the train ids).
        train_shots / test_shots: captures per identity per camera in each split.
        height / width: image size in pixels.
        knobs: the difficulty knobs.
        renderers: ``{modality: renderer}`` where the renderer is not the one the name implies (the
            ``-nir`` presets name their near-infrared modality ``infrared``, as SYSU-MM01 and LLCM do, and
            render it with the ``nir`` renderer); empty for the others.
    """

    name: str
    modalities: tuple[str, ...]
    cameras: dict[str, tuple[int, ...]]
    aligned: bool
    train_ids: int
    test_ids: int
    train_shots: int
    test_shots: int
    height: int = 128
    width: int = 64
    knobs: Knobs = field(default_factory=Knobs)
    renderers: dict[str, str] = field(default_factory=dict)

    def renderer(self, modality: str) -> str:
        """The renderer name of ``modality`` (``visible``, ``nir`` or a thermal name)."""
        return self.renderers.get(modality, modality)

    def images(self, split: str) -> dict[str, int]:
        """``{modality: image count}`` that ``split`` will hold."""
        ids = self.train_ids if split == "train" else self.test_ids
        shots = self.train_shots if split == "train" else self.test_shots
        return {m: ids * shots * len(self.cameras[m]) for m in self.modalities}


_TWO = ("visible", "infrared")
_TWO_CAMERAS = {"visible": (1, 2), "infrared": (3, 4)}
_THREE = ("visible", "nir", "tir")
_THREE_CAMERAS = {m: (1, 2, 3, 4) for m in _THREE}


def _two(name: str, train_ids: int, test_ids: int, train_shots: int, test_shots: int) -> Preset:
    return Preset(name, _TWO, _TWO_CAMERAS, False, train_ids, test_ids, train_shots, test_shots)


def _two_nir(name: str, train_ids: int, test_ids: int, train_shots: int, test_shots: int) -> Preset:
    return Preset(name, _TWO, _TWO_CAMERAS, False, train_ids, test_ids, train_shots, test_shots,
                  renderers={"infrared": "nir"})


def _three(name: str, train_ids: int, test_ids: int, train_shots: int, test_shots: int) -> Preset:
    return Preset(name, _THREE, _THREE_CAMERAS, True, train_ids, test_ids, train_shots, test_shots)


#: the built-in presets (``dataset_args.preset``); sizes are in docs/synthetic.md
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _two("tiny", 8, 6, 2, 2),
        _two("small", 100, 60, 3, 3),
        _two("standard", 160, 100, 4, 3),
        _two_nir("tiny-nir", 8, 6, 2, 2),
        _two_nir("small-nir", 100, 60, 3, 3),
        _two_nir("standard-nir", 160, 100, 4, 3),
        _three("tiny-3m", 6, 5, 1, 1),
        _three("small-3m", 80, 50, 2, 1),
        _three("standard-3m", 120, 80, 2, 2),
    )
}

#: The unlabeled corpus of the shipped pretrained backbone (``reidkit pretrain``): every renderer, each
#: modality with cameras of its own (no capture is seen by two modalities), generated with a seed of its own
#: (:data:`PRETRAIN_WORLD_SEED`), so none of its people appears in any preset a benchmark scores.
PRETRAIN_WORLD = Preset("pretrain-world", ("visible", "nir", "infrared"),
                        {"visible": (1, 2), "nir": (3, 4), "infrared": (5, 6)}, False, 800, 20, 2, 1)
#: the same world (renderers, cameras, seed) at other sizes, for the same number of pretraining steps
#: (benchmarks/pretraining.md): four times the people (38,400 images, a more varied corpus), and half and a
#: quarter of them (4,800 and 2,400 images, each seen two and four times as often)
_PRETRAIN_WORLDS = (PRETRAIN_WORLD, *(
    dataclasses.replace(PRETRAIN_WORLD, name=f"pretrain-world-{size}", train_ids=ids)
    for size, ids in (("large", 3200), ("half", 400), ("quarter", 200))))
for _world in _PRETRAIN_WORLDS:
    PRESETS[_world.name] = _world
#: the pretraining corpora, generated with :data:`PRETRAIN_WORLD_SEED` unless told otherwise
PRETRAIN_PRESETS = tuple(world.name for world in _PRETRAIN_WORLDS)
#: the seed of the pretraining world; benchmarks and the default dataset use seed 0
PRETRAIN_WORLD_SEED = 1000


def fingerprint(preset: Preset) -> str:
    """8 hex digits of everything that decides a preset's images (counts, size, cameras, knobs, generator
    version): part of the cache key, so changing a knob's default can never reuse a stale cached dataset."""
    fields = dataclasses.asdict(preset)
    if not fields["renderers"]:  # presets from before renderers existed keep their cache keys
        del fields["renderers"]
    spec = json.dumps([GENERATOR_VERSION, fields], sort_keys=True, default=list)
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ``ValueError`` naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown synthetic preset {name!r}; known: {', '.join(PRESETS)}") from None
