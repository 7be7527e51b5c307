"""Atomic checkpoint and JSON writes: a crash never leaves a half-written file behind."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (corrupt, other method, incompatible version)."""


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any], *, fsync: bool = True) -> None:
    """Call ``write`` on a binary temporary file beside ``path``, then rename it to ``path``: readers see
    the old file or the whole new one, never a part. ``fsync`` flushes it to disk first (checkpoints,
    run records); many small files that a rerun can remake (mask images) skip that cost."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format version) to ``path`` via a temporary file and a rename."""
    state = {"format_version": FORMAT_VERSION, **state}
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, *, method: str | None = None) -> dict[str, Any]:
    """Read a checkpoint; ``method`` (if given) must match the one that wrote it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable reidkit checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path}: not a reidkit checkpoint (no format_version)")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {state['format_version']} is not supported "
                              f"by this reidkit (format {FORMAT_VERSION})")
    if method is not None and state.get("method") != method:
        raise CheckpointError(f"{path}: checkpoint of method {state.get('method')!r}, not {method!r}")
    return state


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    payload = (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()
    atomic_write(path, lambda f: f.write(payload))
