"""The dataset contract, checked on every dataset the registry knows (built-in and installed plugins) and on
the example dataset plugin (examples/dataset_plugin)."""
from __future__ import annotations

import dataclasses

import pytest

from reidkit.data.datasets.base import Protocol
from reidkit.data.datasets.generic import GenericDataset
from reidkit.registry import DATASETS, EXCLUSIONS
from reidkit.testing import check_dataset


@pytest.mark.parametrize("name", DATASETS.names())
def test_registered_dataset_meets_the_contract(name, tmp_path):
    cls = DATASETS.get(name)  # a broken plugin fails here, with its import error
    assert cls.name == name, f"entry point '{name}' loads a class whose name is {cls.name!r}"
    dataset = check_dataset(cls, tmp_path)
    assert dataset.colour_modality is not None  # every built-in layout has colour images


@pytest.mark.parametrize("breach, message", [
    ("unfrozen", "Config must be frozen"),
    ("no-default", "__init__"),
    ("two-colours", "more than one colour"),
    ("empty-modality", "modality 'thermal' has no training images"),
    ("bad-trial", "indexes outside the gallery pool"),
    ("no-example", "has no write_example"),
])
def test_the_check_names_each_breach(breach, message, tmp_path):
    @dataclasses.dataclass(frozen=breach != "unfrozen")
    class Options:
        colour_modality: str = "auto"

    if breach == "no-default":
        Options = dataclasses.make_dataclass("Options", [("colour_modality", str)], frozen=True)

    class Broken(GenericDataset):
        name = "broken"
        Config = Options

        @classmethod
        def from_config(cls, cfg, args=None):
            data = GenericDataset.from_config(cfg, GenericDataset.Config())
            roles = {m: "colour" for m in data.modalities} if breach == "two-colours" else data.roles
            protocols = dict(data.protocols)
            if breach == "bad-trial":
                p = next(iter(protocols.values()))
                protocols[p.name] = Protocol(p.name, p.query, p.gallery_pool, [[len(p.gallery_pool)]])
            modalities = (*data.modalities, "thermal") if breach == "empty-modality" else data.modalities
            if breach == "empty-modality":
                roles = {**roles, "thermal": "infrared"}
            return cls(data.root, modalities, data.train, protocols, roles=roles)

    if breach == "no-example":
        Broken.write_example = classmethod(lambda cls, root: super(GenericDataset, cls).write_example(root))
    with pytest.raises((AssertionError, TypeError, ValueError, NotImplementedError), match=message):
        check_dataset(Broken, tmp_path)


def test_the_example_dataset_plugin_meets_the_contract_and_trains(example_dataset, register_plugin, tmp_path):
    """examples/dataset_plugin registered in-process as its entry points would (the dataset and its rule):
    the contract holds and a built-in method trains on its `rgb` colour modality through the registry."""
    from reidkit.engine.run import resolve_run_config, run

    register_plugin(EXCLUSIONS, "same-camera", example_dataset.same_camera)
    register_plugin(DATASETS, "csv", example_dataset.CSVDataset)
    dataset = check_dataset(example_dataset.CSVDataset, tmp_path)
    assert dataset.colour_modality == "rgb" and dataset.protocols["rgb-to-ir"].exclusion == "same-camera"
    cfg = resolve_run_config("chcr", overrides=[
        "data.dataset=csv", f"data.root={example_dataset.CSVDataset.write_example(tmp_path / 'run-data')}",
        "data.height=32", "data.width=16", "data.batch_size=4", "data.instances=2", "data.workers=0",
        "model.weights=none", "optim.epochs=1", "optim.iterations=1", f"output={tmp_path / 'run'}"])
    assert cfg.dataset_args == example_dataset.CSVConfig()
    assert set(run(cfg, device="cpu")["results"]) == {"rgb-to-ir", "ir-to-rgb"}
