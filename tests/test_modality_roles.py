"""Modality roles: a dataset says which modality carries colour, and every method asks for the role.

A dataset whose colour modality is called ``rgb`` trains with every built-in method exactly as one that
calls it ``visible``: the same transforms per role, and the whole method contract on a tiny run.
"""
from __future__ import annotations

import pytest
import torch

from reidkit.data.datasets.base import DatasetError, Protocol, ReIDDataset
from reidkit.data.records import Sample
from reidkit.data.roles import check_roles, colour_modality, infer_roles
from reidkit.engine.run import build_method_from, load_dataset
from reidkit.registry import METHODS
from reidkit.testing import check_method, make_tiny_dataset, tiny_config

BUILTIN = ("chcr", "dc-baseline", "imsl")


def test_roles_are_inferred_from_the_usual_names():
    assert infer_roles(("visible", "infrared")) == {"visible": "colour", "infrared": "infrared"}
    for name in ("visible", "rgb", "vis", "color", "colour", "RGB"):
        assert colour_modality(infer_roles((name, "thermal"))) == name
    assert infer_roles(("visible", "nir", "tir")) == {"visible": "colour", "nir": "infrared", "tir": "infrared"}
    assert infer_roles(("cam_a", "cam_b")) == {"cam_a": "other", "cam_b": "other"}
    assert infer_roles(("rgb", "visible")) == {"rgb": "colour", "visible": "other"}  # one colour modality
    assert infer_roles(("cam_a", "ir"), colour="cam_a") == {"cam_a": "colour", "ir": "infrared"}
    with pytest.raises(ValueError, match="'rgb' is not one of"):
        infer_roles(("visible", "ir"), colour="rgb")


def test_declared_roles_are_checked():
    assert check_roles({"b": "infrared", "a": "colour"}, ("a", "b"), "x") == {"a": "colour", "b": "infrared"}
    with pytest.raises(ValueError, match="more than one colour"):
        check_roles({"a": "colour", "b": "colour"}, ("a", "b"), "x")
    with pytest.raises(ValueError, match="unknown modality roles"):
        check_roles({"a": "ultraviolet"}, ("a",), "x")
    with pytest.raises(ValueError, match="declared for"):
        check_roles({"a": "colour"}, ("a", "b"), "x")


def _dataset(modalities, **kw) -> ReIDDataset:
    train = [Sample(f"/{m}/{i}.png", i, 1, m) for m in modalities for i in range(2)]
    test = Protocol.single("p", train[:1], train[1:2])
    return ReIDDataset(None, modalities, train, {"p": test}, **kw)


def test_a_dataset_declares_or_infers_its_roles():
    assert _dataset(("rgb", "thermal")).colour_modality == "rgb"
    assert _dataset(("a", "b"), roles={"a": "infrared", "b": "colour"}).colour_modality == "b"
    assert _dataset(("a", "b")).colour_modality is None
    with pytest.raises(DatasetError, match="more than one colour"):
        _dataset(("a", "b"), roles={"a": "colour", "b": "colour"})


def _fingerprint(transforms) -> list:
    """The transform classes of each view, nested ones (RandomApply) included, by name."""
    def names(t):
        inner = getattr(t, "transforms", None)
        return [type(t).__name__, [names(i) for i in inner]] if inner is not None else type(t).__name__
    return [names(t) for t in transforms or []]


@pytest.mark.parametrize("name", BUILTIN)
def test_an_rgb_named_colour_modality_is_treated_as_visible(name, tmp_path):
    cls = METHODS.get(name)
    built = {}
    for colour in ("visible", "rgb"):
        root = make_tiny_dataset(tmp_path / colour, modalities=(colour, "infrared"))
        cfg = tiny_config(cls, root)
        dataset = load_dataset(cfg)
        assert dataset.colour_modality == colour
        built[colour] = build_method_from(cls, cfg, dataset, torch.device("cpu"))
    visible, rgb = built["visible"], built["rgb"]
    colour_views = _fingerprint(visible.train_transforms("visible"))
    assert colour_views != _fingerprint(visible.train_transforms("infrared")), \
        f"{name} no longer treats colour images apart: this test would not notice a lost role"
    assert _fingerprint(rgb.train_transforms("rgb")) == colour_views
    assert _fingerprint(rgb.train_transforms("infrared")) == _fingerprint(visible.train_transforms("infrared"))


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_method_trains_on_an_rgb_named_dataset(name, tmp_path):
    results = check_method(METHODS.get(name), tmp_path, modalities=("rgb", "infrared"))
    assert set(results) == {"rgb-to-infrared", "infrared-to-rgb"}


def test_chcr_names_the_role_it_misses(tmp_path):
    from reidkit.config import ConfigError

    cls = METHODS.get("chcr")
    root = make_tiny_dataset(tmp_path / "d", modalities=("cam_a", "cam_b"))
    cfg = tiny_config(cls, root)
    with pytest.raises(ConfigError, match="role 'colour'.*dataset_args.colour_modality"):
        build_method_from(cls, cfg, load_dataset(cfg), torch.device("cpu"))
