"""Benchmark suite files: methods x datasets x variants x seeds (``reidkit.bench.runner`` runs them).

A suite file (YAML, documented in ``benchmarks/README.md``)::

    name: smoke
    seeds: [0, 1, 2]
    set: {optim.epochs: 2}                       # overrides for every run
    datasets:
      synthetic-tiny: {set: {dataset_args.preset: tiny}}
      regdb: {set: {data.dataset: regdb, data.root: /data/RegDB}, trials: [1, 2]}
    runs:
      - method: chcr
        config: ../configs/chcr/synthetic.yaml   # or {dataset label: file}; relative to the suite file
        set: {optim.iterations: 20}
        datasets: [synthetic-tiny]               # default: every dataset
        variants: {full: {}, baseline: {method_args.hierarchy: none}}

Overrides apply in this order (later wins): method defaults, config file, suite ``set``, dataset ``set``,
run ``set``, variant, ``reidkit bench --set``, then ``seed``, ``dataset_args.trial`` and ``output``. Each run
writes its run directory to
``<out>/<dataset>/<method>[/<variant>]/seed<k>[-trial<t>]/`` (the job's :attr:`Job.id`).
"""
from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reidkit.config import ConfigError, load_yaml

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_TOP_KEYS = ("name", "description", "seeds", "set", "datasets", "runs")
_DATASET_KEYS = ("set", "trials", "description")
_RUN_KEYS = ("method", "config", "set", "datasets", "variants")


@dataclass(frozen=True)
class Job:
    """One run of a suite: its labels, where its files go and how its config is made."""

    dataset: str
    method: str
    variant: str | None
    seed: int
    trial: int | None
    config_file: str | None
    overrides: tuple[str, ...]

    @property
    def id(self) -> str:
        """``<dataset>/<method>[/<variant>]/seed<k>[-trial<t>]``: also the run directory below the output."""
        parts = [self.dataset, self.method, *([self.variant] if self.variant else []), self.leaf]
        return "/".join(parts)

    @property
    def leaf(self) -> str:
        return f"seed{self.seed}" + (f"-trial{self.trial}" if self.trial is not None else "")

    def all_overrides(self, run_dir: Path) -> list[str]:
        extra = [f"seed={self.seed}", f"output={json.dumps(str(run_dir))}"]
        if self.trial is not None:
            extra.append(f"dataset_args.trial={self.trial}")
        return [*self.overrides, *extra]


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    jobs: list[Job] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------
# reading a suite file
# ------------------------------------------------------------------------------------------------------
def _check_keys(data: Mapping, known: Sequence[str], where: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"{where}: unknown key '{key}'{hint}")


def _label(value: Any, where: str) -> str:
    text = str(value)
    if not _LABEL.match(text):
        raise ConfigError(f"{where}: {text!r} is not a usable name (letters, digits, '.', '_', '+', '-')")
    return text


def flatten_overrides(value: Any, where: str) -> list[str]:
    """A suite's overrides (a mapping of dotted keys, nested mappings, or ``key=value`` strings) as
    ``--set`` strings whose values parse back to the same YAML values."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) and "=" in v for v in value):
            raise ConfigError(f"{where}: a list of overrides must hold 'key=value' strings")
        return list(value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of config keys to values, got {type(value).__name__}")
    out: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping) and node:
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out.append(f"{prefix}={json.dumps(node)}")

    for key, node in value.items():
        walk(str(key), node)
    return out


def _ints(value: Any, where: str) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}: expected an integer or a non-empty list of integers, got {value!r}")
    return values


def load_suite(path: str | Path, *, extra: Sequence[str] = ()) -> Suite:
    """Read and validate a suite file; every mistake is a :class:`ConfigError` naming its place.

    ``extra``: ``key=value`` overrides applied to every run after the suite's own (``bench --set``),
    e.g. the local ``data.root`` of a real dataset.
    """
    for text in extra:
        if "=" not in text:
            raise ConfigError(f"--set expects key=value, got {text!r}")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"suite file not found: {path}")
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping ({', '.join(_TOP_KEYS)})")
    _check_keys(data, _TOP_KEYS, str(path))
    name = _label(data.get("name", path.stem), f"{path}: name")
    seeds = _ints(data.get("seeds", [0]), f"{path}: seeds")
    common = flatten_overrides(data.get("set"), f"{path}: set")
    datasets = data.get("datasets") or {"synthetic": {}}
    if not isinstance(datasets, Mapping):
        raise ConfigError(f"{path}: datasets must map a label to {{set: ..., trials: ...}}")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{path}: runs must be a non-empty list of {{method: NAME, ...}}")
    suite = Suite(name=name, path=path, description=str(data.get("description", "")).strip())
    seen: set[str] = set()
    for i, run in enumerate(runs):
        where = f"{path}: runs[{i}]"
        if not isinstance(run, Mapping) or "method" not in run:
            raise ConfigError(f"{where}: expected a mapping with at least 'method'")
        _check_keys(run, _RUN_KEYS, where)
        method = _label(run["method"], f"{where}.method")
        run_set = flatten_overrides(run.get("set"), f"{where}.set")
        variants = run.get("variants") or {None: {}}
        if not isinstance(variants, Mapping):
            raise ConfigError(f"{where}.variants: expected a mapping of variant name to overrides")
        labels = run.get("datasets", list(datasets))
        for label in labels if isinstance(labels, list) else [labels]:
            if label not in datasets:
                raise ConfigError(f"{where}.datasets: '{label}' is not in the suite's datasets "
                                  f"({', '.join(map(str, datasets))})")
            entry = datasets[label] or {}
            dwhere = f"{path}: datasets.{label}"
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{dwhere}: expected {{set: ..., trials: ...}}")
            _check_keys(entry, _DATASET_KEYS, dwhere)
            dataset_set = flatten_overrides(entry.get("set"), f"{dwhere}.set")
            trials = _ints(entry["trials"], f"{dwhere}.trials") if "trials" in entry else [None]
            config = _config_for(run.get("config"), str(label), path, where)
            for vname, voverrides in variants.items():
                variant = None if vname is None else _label(vname, f"{where}.variants")
                vset = flatten_overrides(voverrides, f"{where}.variants.{vname}")
                for seed in seeds:
                    for trial in trials:
                        job = Job(_label(label, dwhere), method, variant, seed, trial, config,
                                  tuple([*common, *dataset_set, *run_set, *vset, *extra]))
                        if job.id in seen:
                            raise ConfigError(f"{where}: run {job.id} appears twice in the suite; give the "
                                              "second one a variant name")
                        seen.add(job.id)
                        suite.jobs.append(job)
    return suite


def _config_for(value: Any, label: str, suite_path: Path, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get(label)
        if value is None:
            return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.config: expected a file name or a mapping of dataset label to file")
    file = Path(value).expanduser()
    if not file.is_absolute():
        file = suite_path.parent / file
    return os.path.normpath(file)  # a missing file fails its runs (and ``bench --dry-run``), not the suite
