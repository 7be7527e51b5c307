"""Registry discovery, collisions and broken plugins, with monkeypatched entry points."""
import sys
from importlib import metadata

import pytest

from reidkit import registry
from reidkit.registry import Registry, RegistryError


class FakeDist:
    def __init__(self, name):
        self.name = name


def fake_ep(name, value, dist):
    ep = metadata.EntryPoint(name=name, value=value, group="reidkit.test")
    return ep._for(FakeDist(dist)) if hasattr(ep, "_for") else ep


@pytest.fixture
def fake_group(monkeypatch):
    eps = []
    monkeypatch.setattr(registry, "_entry_points", lambda group: list(eps))
    return eps


def test_discovery_is_lazy_and_loads_on_get(fake_group):
    fake_group.append(fake_ep("mod", "reidkit_test_lazy_plugin:thing", "pkg-a"))
    module = type(sys)("reidkit_test_lazy_plugin")
    module.thing = object()
    sys.modules["reidkit_test_lazy_plugin"] = module
    try:
        reg = Registry("reidkit.test", "method")
        assert reg.names() == ["mod"]
        assert reg._loaded == {}  # nothing imported by listing
        assert reg.get("mod") is module.thing
    finally:
        del sys.modules["reidkit_test_lazy_plugin"]


def test_unknown_name_suggests_a_close_one(fake_group):
    fake_group.append(fake_ep("chcr", "x:y", "pkg"))
    reg = Registry("reidkit.test", "method")
    with pytest.raises(RegistryError, match=r"method 'chrc' is not installed; did you mean 'chcr'\? \(installed methods: chcr\)"):
        reg.get("chrc")


def test_name_registered_twice_names_both_distributions(fake_group):
    fake_group.append(fake_ep("dup", "pkg_one:M", "dist-one"))
    fake_group.append(fake_ep("dup", "pkg_two:M", "dist-two"))
    reg = Registry("reidkit.test", "method")
    with pytest.raises(RegistryError, match="dist-one and dist-two"):
        reg.get("dup")
    assert reg.status()[0]["status"].startswith("duplicate")


def test_broken_plugin_is_isolated(fake_group):
    fake_group.append(fake_ep("broken", "reidkit_no_such_module_xyz:M", "bad-dist"))
    fake_group.append(fake_ep("fine", "reidkit.config:RunConfig", "reidkit"))
    reg = Registry("reidkit.test", "method")
    rows = {r["name"]: r for r in reg.status()}
    assert rows["fine"]["status"] == "ok"
    assert rows["broken"]["status"].startswith("broken: ModuleNotFoundError")
    with pytest.raises(RegistryError, match="failed to import"):
        reg.get("broken")


def test_import_reidkit_imports_no_plugin():
    import subprocess

    code = ("import sys, reidkit, reidkit.registry; "
            "bad = [m for m in sys.modules if m.startswith(('reidkit_methods', 'reidkit.cluster', 'reidkit.models'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_builtin_registries_list_the_core_plugins():
    assert {"resnet18", "resnet34", "resnet50", "resnet-mini"} <= set(registry.BACKBONES.names())
    assert {"generic", "synthetic", "sysu_mm01", "regdb", "llcm", "rgbnt201"} <= set(registry.DATASETS.names())
