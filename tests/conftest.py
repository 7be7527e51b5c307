"""Shared fixtures: a tiny on-disk dataset, the example plugins (a method, a dataset) and in-process
registration of plugin objects."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    from reidkit.testing import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def shipped_config():
    """``shipped_config(method, name)``: the run config that ``configs/<method>/<name>.yaml`` resolves to."""
    from reidkit.engine.run import resolve_run_config

    def resolve(method: str, name: str):
        return resolve_run_config(method, config_file=ROOT / "configs" / method / f"{name}.yaml")

    return resolve


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script(name)``: the module ``benchmarks/<name>.py``, loaded from its file (no package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def _example(folder: str, module: str):
    """``module`` of the example plugin in ``examples/<folder>``, importable without installing it."""
    path = str(ROOT / "examples" / folder)
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(module)


@pytest.fixture(scope="session")
def example_method():
    """The example plugin's method (examples/plugin), importable without installing it."""
    return _example("plugin", "reidkit_kmeans_proxy").KMeansProxy


@pytest.fixture
def with_example(example_method, monkeypatch):
    """The example method registered in-process as ``kmeans-proxy`` (as if its package were installed)."""
    from reidkit import registry
    from reidkit.registry import Entry

    entries = dict(registry.METHODS._discover())
    entries["kmeans-proxy"] = Entry("kmeans-proxy", "reidkit_kmeans_proxy:KMeansProxy", "example",
                                    lambda: example_method)
    monkeypatch.setattr(registry.METHODS, "_entries", entries)
    monkeypatch.setattr(registry.METHODS, "_loaded", {})
    return example_method


@pytest.fixture(scope="session")
def example_dataset():
    """The example dataset plugin's module (examples/dataset_plugin), importable without installing it."""
    return _example("dataset_plugin", "reidkit_csv_dataset")


@pytest.fixture
def register_plugin(monkeypatch):
    """``register_plugin(registry, name, obj)``: ``obj`` registered in-process under ``name``, as if a
    plugin package had declared it in its entry points; undone after the test."""
    from reidkit.registry import Entry

    def register(registry, name: str, obj):
        entries = dict(registry._discover())
        entries[name] = Entry(name, f"test_plugin:{name}", "a test plugin", lambda: obj)
        monkeypatch.setattr(registry, "_entries", entries)
        monkeypatch.setattr(registry, "_loaded", {})
        return obj

    return register
