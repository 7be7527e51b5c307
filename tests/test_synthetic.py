"""The synthetic generator: layout and counts, determinism, cache, dataset class, preview."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reidkit.config import DataConfig
from reidkit.data.datasets.base import DatasetError
from reidkit.data.datasets.synthetic import SyntheticDataset
from reidkit.data.synthetic import PARTS, PRESETS, cached_root, generate, preview, read_mask
from reidkit.data.synthetic.writer import split_ids


def _files(root: Path) -> dict[str, str]:
    """relative path -> sha1 of every file under root"""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate("tiny", tmp_path_factory.mktemp("synth") / "tiny", seed=0, progress=False)


@pytest.fixture(scope="module")
def tiny3m(tmp_path_factory) -> Path:
    return generate("tiny-3m", tmp_path_factory.mktemp("synth") / "tiny3m", seed=0, progress=False)


def test_layout_and_counts_match_the_preset(tiny):
    preset = PRESETS["tiny"]
    ds = SyntheticDataset.from_root(tiny)
    assert ds.name == "synthetic" and ds.modalities == ("infrared", "visible")
    assert ds.num_train_ids == preset.train_ids
    for split, samples in (("train", ds.train), ("test", [s for p in ds.protocols.values() for s in p.query])):
        for modality, count in preset.images(split).items():
            got = [s for s in samples if s.modality == modality]
            assert len(got) == count, (split, modality)
            assert {s.camera for s in got} == set(preset.cameras[modality])
            assert all(s.mask_path and Path(s.mask_path).is_file() for s in got)
    ids = split_ids(preset)
    assert {s.person_id for s in ds.train} == set(ids["train"])
    assert not set(ids["train"]) & set(ids["test"])
    assert set(ds.protocols) == {"visible-to-infrared", "infrared-to-visible"}
    vis, ir = PRESETS["tiny"].cameras["visible"], PRESETS["tiny"].cameras["infrared"]
    assert not set(vis) & set(ir)  # SYSU-like: every camera belongs to one modality
    meta = json.loads((tiny / "synthetic.json").read_text())
    assert meta["preset"] == "tiny" and meta["images"]["train"] == preset.images("train")


def test_images_are_colour_or_grey_and_masks_fit_them(tiny):
    for image in sorted((tiny / "train").rglob("*.png"))[::7]:
        rel = image.relative_to(tiny)
        mask = read_mask(tiny / "masks" / rel)
        with Image.open(image) as img:
            assert img.mode == ("RGB" if rel.parts[1] == "visible" else "L")
            assert img.size == (mask.shape[1], mask.shape[0]) == (PRESETS["tiny"].width, PRESETS["tiny"].height)
        assert mask.max() < len(PARTS)
        assert (mask > 0).mean() > 0.08  # a person is there
        assert {1, 2, 4} <= set(np.unique(mask))  # head, torso and legs visible in every capture


def test_generation_is_deterministic_and_seeded(tiny, tmp_path):
    again = generate("tiny", tmp_path / "again", seed=0, progress=False)
    assert _files(again) == _files(tiny)
    other = generate("tiny", tmp_path / "other", seed=1, progress=False)
    first, second = _files(tiny), _files(other)
    images = [k for k in first if k.startswith("train/") and k in second]
    assert images and sum(first[k] != second[k] for k in images) == len(images)


def test_aligned_three_modality_preset_shares_geometry(tiny3m):
    ds = SyntheticDataset.from_root(tiny3m)
    assert ds.modalities == ("nir", "tir", "visible")
    stems = {m: sorted(str(p.relative_to(tiny3m / "train" / m)) for p in (tiny3m / "train" / m).rglob("*.png"))
             for m in ds.modalities}
    assert stems["visible"] == stems["nir"] == stems["tir"]
    assert len(stems["visible"]) == PRESETS["tiny-3m"].images("train")["visible"]
    some = stems["visible"][0]
    masks = [read_mask(tiny3m / "masks" / "train" / m / some) for m in ds.modalities]
    assert all(np.array_equal(masks[0], m) for m in masks[1:])
    assert sorted(ds.protocols) == sorted([
        "visible-to-nir", "visible-to-tir", "nir-to-visible", "nir-to-tir", "tir-to-visible", "tir-to-nir",
        "nir-to-tir+visible", "tir-to-nir+visible", "visible-to-nir+tir"])  # galleries in dataset order
    both = ds.protocols["tir-to-nir+visible"]
    assert len(both.gallery_pool) == len(ds.protocols["tir-to-visible"].gallery_pool) * 2


def test_knob_overrides_change_images_and_bad_names_fail(tiny, tmp_path):
    noisy = generate("tiny", tmp_path / "noisy", seed=0, progress=False, noise=0.2)
    a = np.asarray(Image.open(next((tiny / "train" / "visible").rglob("*.png"))), dtype=float)
    b = np.asarray(Image.open(next((noisy / "train" / "visible").rglob("*.png"))), dtype=float)
    assert np.abs(a - b).mean() > 5
    with pytest.raises(TypeError, match="unknown synthetic knob"):
        generate("tiny", tmp_path / "bad", progress=False, nosie=0.1)
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        generate("huge", tmp_path / "bad2", progress=False)
    with pytest.raises(FileExistsError):
        generate("tiny", tiny, progress=False)


def test_cached_root_generates_once_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = cached_root("tiny", seed=3)
    assert root.is_relative_to(tmp_path / "cache" / "reidkit") and (root / "synthetic.json").is_file()
    stamp = (root / "synthetic.json").stat().st_mtime_ns
    assert cached_root("tiny", seed=3) == root
    assert (root / "synthetic.json").stat().st_mtime_ns == stamp  # reused, not regenerated
    assert [p.name for p in root.parent.iterdir()] == [root.name]  # no temporary folder left behind

    ds = SyntheticDataset.from_config(DataConfig(dataset="synthetic", root=None),
                                      SyntheticDataset.Config(preset="tiny"))
    assert ds.num_train_ids == PRESETS["tiny"].train_ids and ds.root.startswith(str(tmp_path / "cache"))
    assert "seed0" in Path(ds.root).name

    # dataset_args.world_seed reads another world of the same preset: the seed-3 entry made above
    other = SyntheticDataset.from_config(DataConfig(dataset="synthetic", root=None),
                                         SyntheticDataset.Config(preset="tiny", world_seed=3))
    assert other.root == str(root) and other.num_train_ids == ds.num_train_ids
    pixels = [Path(d.root, d.train[0].path).read_bytes() for d in (ds, other)]
    assert pixels[0] != pixels[1]  # other people


def test_dataset_from_config_uses_root_when_given(tiny):
    ds = SyntheticDataset.from_config(DataConfig(dataset="synthetic", root=str(tiny)))
    assert ds.root == str(tiny) and len(ds.train) == sum(PRESETS["tiny"].images("train").values())
    with pytest.raises(DatasetError, match="world_seed=5 picks a cached preset, but data.root is set"):
        SyntheticDataset.from_config(DataConfig(dataset="synthetic", root=str(tiny)),
                                     SyntheticDataset.Config(preset="tiny", world_seed=5))


def test_preview_shows_identities_by_modality(tiny, tmp_path):
    out = preview(tiny, tmp_path / "p.png", identities=3)
    with Image.open(out) as img:
        assert img.width > img.height / 3 and img.height >= 3 * 128
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 20


def test_nir_presets_render_their_infrared_with_the_nir_renderer(tiny, tmp_path):
    """`-nir` presets keep the modality names of SYSU-MM01/LLCM (visible, infrared) and render `infrared`
    as near-infrared: the same captures as the thermal preset in visible light, other pixels in infrared."""
    nir = generate("tiny-nir", tmp_path / "nir", seed=0, progress=False)
    files = sorted((tiny / "train" / "infrared").rglob("*.png"))
    assert files and len(files) == len(sorted((nir / "train" / "infrared").rglob("*.png")))
    for f in files[:4]:
        rel = f.relative_to(tiny)
        thermal, near = np.asarray(Image.open(f)), np.asarray(Image.open(nir / rel))
        assert thermal.shape == near.shape and np.abs(thermal.astype(int) - near.astype(int)).mean() > 5
    same_visible = [np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(nir / p.relative_to(tiny))))
                    for p in sorted((tiny / "train" / "visible").rglob("*.png"))[:4]]
    assert all(same_visible)
    assert PRESETS["tiny-nir"].renderer("infrared") == "nir" and PRESETS["tiny"].renderer("infrared") == "infrared"


def test_fingerprints_of_the_older_presets_did_not_move():
    """Adding per-modality renderers must not invalidate the users' cached datasets."""
    from reidkit.data.synthetic.presets import fingerprint

    assert fingerprint(PRESETS["standard"]) == "4dadc2c5"
    assert fingerprint(PRESETS["standard"]) != fingerprint(PRESETS["standard-nir"])


def test_the_pretraining_world_is_its_own():
    """The shipped backbone's corpus: its own seed, every renderer, no camera shared between modalities."""
    from reidkit.data.synthetic.presets import PRETRAIN_WORLD, PRETRAIN_WORLD_SEED

    assert PRETRAIN_WORLD_SEED != 0 and set(PRETRAIN_WORLD.modalities) == {"visible", "nir", "infrared"}
    cams = [c for m in PRETRAIN_WORLD.modalities for c in PRETRAIN_WORLD.cameras[m]]
    assert len(cams) == len(set(cams)) and not PRETRAIN_WORLD.aligned
    # the same world with four times, half and a quarter of the people
    for name, scale in (("pretrain-world-large", 4), ("pretrain-world-half", 0.5), ("pretrain-world-quarter", 0.25)):
        world = PRESETS[name]
        assert world.train_ids == scale * PRETRAIN_WORLD.train_ids
        assert world.cameras == PRETRAIN_WORLD.cameras and world.knobs == PRETRAIN_WORLD.knobs
