"""reidkit.hardware.native_bf16: bfloat16 in hardware, not oneDNN's emulation; the paths that follow it."""
import importlib

import numpy as np
import pytest
import torch

from reidkit import hardware
from reidkit.cluster.synthetic import structured_features

knn_module = importlib.import_module("reidkit.cluster.knn")


@pytest.fixture(autouse=True)
def _fresh_cache():
    hardware.native_bf16.cache_clear()
    yield
    hardware.native_bf16.cache_clear()


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(False, False, False), (True, False, True),
                                                       (False, True, True)])
def test_native_bf16_asks_for_the_instructions(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    # oneDNN says yes wherever it can emulate bfloat16; that must not count
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert hardware.native_bf16() is expected


def test_cpu_flags_fallback(monkeypatch, tmp_path):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    info = tmp_path / "cpuinfo"
    read_flags = hardware._cpu_flags
    monkeypatch.setattr(hardware, "_cpu_flags", lambda: read_flags(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_vnni\n\nprocessor\t: 1\nflags\t: amx_bf16\n")
    assert hardware.native_bf16() is False  # the first processor's flags
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    hardware.native_bf16.cache_clear()
    assert hardware.native_bf16() is True


def test_cpu_flags_of_a_missing_file(tmp_path):
    assert hardware._cpu_flags(tmp_path / "absent") == set()


def test_cpu_name_is_the_first_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.80GHz\n"
                    "\nprocessor\t: 1\nmodel name\t: other\n")
    assert hardware.cpu_name.__wrapped__(info) == "Intel(R) Xeon(R) Processor @ 2.80GHz"
    name = hardware.cpu_name.__wrapped__(tmp_path / "absent")  # elsewhere: platform.processor(), maybe empty
    assert name is None or (isinstance(name, str) and name)


@pytest.mark.parametrize("native", [False, True])
def test_knn_auto_precision_follows_native_bf16(monkeypatch, native):
    calls = []
    real = knn_module.mixed_knn
    monkeypatch.setattr(knn_module, "native_bf16", lambda: native)
    monkeypatch.setattr(knn_module, "mixed_knn", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = structured_features(300, 32, identities=20, seed=0).features
    nb = knn_module.knn(x, 5)
    assert bool(calls) is native
    np.testing.assert_array_equal(nb.indices, knn_module.knn(x, 5, precision="fp32").indices)
