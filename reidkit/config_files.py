"""Config files that build on other config files: the ``_base_`` key.

A config file may name one base file or a list of them::

    _base_: ../datasets/sysu_mm01.yaml          # or [../datasets/sysu_mm01.yaml, gpu.yaml]
    method_args:
      eps: 0.6

The rule, the only one (no interpolation, no deletion, no ``type=`` strings):

- a base path is relative to the file that names it (absolute paths are taken as they are);
- bases are read first, in the order listed, each one resolved the same way (a base may have bases);
- mappings merge key by key at every depth, later wins: a later base over an earlier one, the file's own
  keys over all of its bases; any other value (a list, a number, ``null``) replaces the earlier one whole;
- a file that reaches itself through its bases is an error that names the chain; so is an empty key
  (``data:`` with nothing below it) over a mapping that a base gives, which would drop that mapping.

What comes out is one plain mapping without ``_base_``, which :func:`reidkit.config.resolve` merges over the
code defaults and the method's ``run_defaults``, before the ``--set`` overrides. The run's ``config.yaml``
and ``reidkit config`` show the result, never the ``_base_`` chain, so a run folder stays reproducible on its
own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reidkit.config import ConfigError, deep_merge, read_yaml

#: the key that names a config file's bases
BASE_KEY = "_base_"


def read_config(path: str | Path) -> dict[str, Any]:
    """The mapping a config file stands for: its bases merged in order, then its own keys on top."""
    return _compose(Path(path), ())


def _bases(path: Path, data: dict[str, Any]) -> list[Path]:
    value = data.get(BASE_KEY)
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{_shown(path)}: {BASE_KEY} must be a file name or a non-empty list of file names, "
                          f"got {value!r}")
    return [path.parent / name for name in names]


def _shown(path: Path) -> str:
    """``path`` as a user would type it: relative to the working directory when it is below it."""
    path = Path(os.path.normpath(path))
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _compose(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """``seen``: the files that led here, outermost first (a cycle returns to one of them)."""
    if path.resolve() in {p.resolve() for p in seen}:
        names = " -> ".join(_shown(p) for p in (*seen, path))
        raise ConfigError(f"{BASE_KEY} cycle: {names}")
    if seen and not path.is_file():
        raise ConfigError(f"{_shown(seen[-1])}: {BASE_KEY} file not found: {_shown(path)}")
    data = read_yaml(path)
    chain = (*seen, path)
    merged: dict[str, Any] = {}
    for base in _bases(path, data):
        merged = deep_merge(merged, _compose(base, chain))
    own = {k: v for k, v in data.items() if k != BASE_KEY}
    _check_no_empty_sections(own, merged, path, "")
    return deep_merge(merged, own)


def _check_no_empty_sections(own: dict[str, Any], merged: dict[str, Any], path: Path, where: str) -> None:
    """An empty key (``data:`` with nothing below it is ``null``) would wipe a base's whole mapping: refuse."""
    for key, value in own.items():
        name = f"{where}.{key}" if where else str(key)
        below = merged.get(key)
        if value is None and isinstance(below, dict):
            raise ConfigError(f"{_shown(path)}: '{name}' is empty, which would drop the mapping its {BASE_KEY} "
                              f"files give it; remove the key or give it values")
        if isinstance(value, dict) and isinstance(below, dict):
            _check_no_empty_sections(value, below, path, name)
