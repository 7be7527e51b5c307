"""What the CPU computes natively, for the paths whose speed depends on it.

bfloat16 matrix work is faster than float32 only on CPUs with bfloat16 instructions: AVX512-BF16 (Intel
Cooper Lake and later, AMD Zen 4 and later) or AMX (Intel Sapphire Rapids and later). Elsewhere oneDNN
emulates it, and it is slower than float32: on an AVX-512 Xeon without them, a resnet-mini training step
under bfloat16 autocast took twice as long as in float32, a 1024 x 2048 x 4096 product 4.4 times as long
(benchmarks/cpu-bf16.md). ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` does not tell the two apart (it
is true wherever oneDNN *can* run bfloat16, emulated included), so :func:`native_bf16` asks for the
instructions themselves.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

#: CPU flags (Linux /proc/cpuinfo names) that mean bfloat16 in hardware
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX), so bfloat16 is the faster path.

    Asks torch (``torch.cpu._is_avx512_bf16_supported`` / ``_is_amx_tile_supported``) and, where this torch
    has neither query, the Linux CPU flags; False when nothing answers (float32 is the safe choice).
    """
    queries = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    queries = [q for q in queries if callable(q)]
    if queries:
        try:
            return any(bool(q()) for q in queries)
        except RuntimeError:  # pragma: no cover - depends on the torch build
            pass
    return bool(set(_BF16_FLAGS) & _cpu_flags())


@functools.lru_cache(maxsize=1)
def cpu_name(path: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere :func:`platform.processor`), or None: run
    times are comparable only between runs on the same CPU, so ``env.json`` records it."""
    name = _cpuinfo_field(path, ("model name", "Model name"))
    if name:
        return name
    import platform

    return platform.processor() or None


def _cpu_flags(path: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The flags of the first processor in ``path`` (empty where the file does not exist)."""
    return set((_cpuinfo_field(path, ("flags", "Features")) or "").split())


def _cpuinfo_field(path: Path, names: tuple[str, ...]) -> str | None:
    """The first processor's value of the first line starting with one of ``names`` (None when absent)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(names):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
