"""Write a preset to disk in the ``generic`` layout, and keep generated presets in the user's cache.

::

    <root>/train/<modality>/<pid>/c<cam>_<pid>_<shot>.png          identities 0001..N_train
    <root>/test/<modality>/<pid>/c<cam>_<pid>_<shot>.png           identities N_train+1.. (disjoint)
    <root>/masks/<split>/<modality>/<pid>/c<cam>_<pid>_<shot>.png  part masks (palette PNG, ids = masks.PARTS)
    <root>/synthetic.json                                          preset, seed, version, knobs, counts

Visible images are RGB PNGs; infrared, nir and tir images are 8-bit grey PNGs (load with ``.convert("RGB")``).
Every capture draws its randomness from ``(seed, pid, camera, shot)``, so files do not depend on order.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image

from reidkit.data.synthetic.masks import save_mask
from reidkit.data.synthetic.people import Person, lookalike_models, sample_people
from reidkit.data.synthetic.presets import GENERATOR_VERSION, Knobs, Preset, fingerprint, get_preset
from reidkit.data.synthetic.render import render_capture
from reidkit.data.synthetic.scene import Camera, make_camera, sample_capture

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
META_FILE = "synthetic.json"


def split_ids(preset: Preset) -> dict[str, list[int]]:
    """Person ids of each split: train 1..N, test N+1..N+M."""
    return {"train": list(range(1, preset.train_ids + 1)),
            "test": list(range(preset.train_ids + 1, preset.train_ids + preset.test_ids + 1))}


def make_cameras(preset: Preset, seed: int, knobs: Knobs) -> dict[int, Camera]:
    """One :class:`Camera` per camera id (shared by every modality that uses the id)."""
    cameras: dict[int, Camera] = {}
    for modality in preset.modalities:
        for slot, cam_id in enumerate(preset.cameras[modality]):
            if cam_id not in cameras:
                cameras[cam_id] = make_camera(seed, cam_id, slot, preset.width, preset.height, knobs)
    return cameras


def camera_modalities(preset: Preset) -> dict[int, tuple[str, ...]]:
    """Which modalities each camera id renders (all of them, for aligned presets)."""
    out: dict[int, list[str]] = {}
    for modality in preset.modalities:
        for cam_id in preset.cameras[modality]:
            out.setdefault(cam_id, []).append(modality)
    return {cam: tuple(ms) for cam, ms in sorted(out.items())}


def write_person(root: Path, split: str, person: Person, preset: Preset, cameras: dict[int, Camera],
                 knobs: Knobs, seed: int) -> int:
    """Render and save every capture of one person; returns the number of images written."""
    shots = preset.train_shots if split == "train" else preset.test_shots
    pid = f"{person.pid:04d}"
    written = 0
    for cam_id, modalities in camera_modalities(preset).items():
        camera = cameras[cam_id]
        for shot in range(shots):
            rng = np.random.default_rng([seed, 4, person.pid, cam_id, shot])
            capture = sample_capture(rng, person, camera, preset.width, preset.height, knobs)
            images, parts = render_capture(person, capture, camera, modalities, knobs,
                                           preset.height, preset.width, renderers=preset.renderers)
            stem = f"c{cam_id}_{pid}_{shot:03d}"
            for modality, image in images.items():
                folder = root / split / modality / pid
                mask_folder = root / "masks" / split / modality / pid
                folder.mkdir(parents=True, exist_ok=True)
                mask_folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(folder / f"{stem}.png", compress_level=6)
                save_mask(parts, mask_folder / f"{stem}.png")
                written += 1
    return written


def _progress(enabled: bool, label: str):
    """A rich progress bar (a context manager giving the bar), or a context giving ``None``."""
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


def generate(preset: str, output: str | Path, *, seed: int = 0, progress: bool = True, **knobs: float) -> Path:
    """Write preset ``preset`` (``PRESETS`` name) with ``seed`` into ``output`` (created; must not hold
    files yet) in the generic layout with masks; ``knobs`` override the preset's :class:`Knobs`.

    Returns the output folder. Deterministic: the same preset, seed and knobs give identical files.
    """
    spec = get_preset(preset)
    spec = dataclasses.replace(spec, knobs=spec.knobs.replace(**knobs))
    root = Path(output).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not an empty folder; choose a new --output")
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ids = split_ids(spec)
    people = {split: sample_people(seed, split, ids[split], spec.knobs) for split in SPLITS}
    cameras = make_cameras(spec, seed, spec.knobs)
    total = sum(len(p) for p in people.values())
    log.info("generating synthetic preset %s (seed %d) into %s", preset, seed, root)
    bar = _progress(progress, f"synthetic {preset} (people)")
    written = 0
    with bar as pbar:
        task = pbar.add_task("people", total=total) if pbar is not None else None
        for split in SPLITS:
            for person in people[split]:
                written += write_person(root, split, person, spec, cameras, spec.knobs, seed)
                if pbar is not None:
                    pbar.advance(task)
    meta = {
        "generator": "reidkit.data.synthetic", "version": GENERATOR_VERSION, "preset": preset, "seed": seed,
        "modalities": list(spec.modalities), "cameras": {m: list(c) for m, c in spec.cameras.items()},
        "aligned": spec.aligned, "size": [spec.height, spec.width], "knobs": dataclasses.asdict(spec.knobs),
        "ids": {s: len(ids[s]) for s in SPLITS}, "images": {s: spec.images(s) for s in SPLITS},
        "lookalikes": {s: len(lookalike_models(seed, s, len(ids[s]), spec.knobs.lookalike_share)) for s in SPLITS},
    }
    (root / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("wrote %d images in %.1f s", written, time.perf_counter() - started)
    return root


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/reidkit`` or ``~/.cache/reidkit``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "reidkit"


def cached_root(preset: str, seed: int = 0, *, progress: bool = True) -> Path:
    """The cached dataset of ``preset`` / ``seed`` for this generator version, generated on first use.

    Generation writes to a temporary folder beside the cache entry and renames it into place, so an
    interrupted or concurrent run never leaves a half-written dataset under the final name.
    """
    spec = get_preset(preset)  # fail early on an unknown name
    final = cache_dir() / "synthetic" / f"{preset}-seed{seed}-v{GENERATOR_VERSION}-{fingerprint(spec)}"
    if (final / META_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        generate(preset, tmp, seed=seed, progress=progress)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / META_FILE).is_file():  # not a concurrent winner: a stale, broken entry
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
