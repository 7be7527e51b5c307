"""Reading a benchmark folder back: one record per run, grouped into report rows with mean and std.

A benchmark folder is what ``reidkit bench`` writes (``suite.json`` plus run directories), but any folder
of run directories works: a run is a folder holding ``metrics.json`` (finished) or ``failed.json``
(failed). Labels come from ``suite.json`` when it lists the run, else from the path
``<dataset>/<method>[/<variant>]/seed<k>[-trial<t>]``.

Statistics are over the finished runs of a row (seeds, and RegDB trials when the suite has them): the
mean and the *sample* standard deviation (ddof = 1), which is undefined for a single run.
"""
from __future__ import annotations

import functools
import json
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reidkit.bench.runner import FAILED_FILE, SUITE_INDEX, run_status
from reidkit.config import SPEED_ONLY_KEYS, ConfigError, deep_merge, drop_keys

_LEAF = re.compile(r"^seed(\d+)(?:-trial(\d+))?$")
#: config keys that may differ between the runs of one row (data.trial: run folders older than dataset_args;
#: SPEED_ONLY_KEYS change the speed of a run, never its results)
_REPLICATE_KEYS = (("seed",), ("output",), ("dataset_args", "trial"), ("data", "trial"), *SPEED_ONLY_KEYS)


@dataclass
class RunRecord:
    """One run directory and what it holds."""

    id: str
    dataset: str
    method: str
    variant: str | None
    seed: int | None
    trial: int | None
    dir: Path
    status: str  # done, failed, pending, busy, running
    metrics: dict[str, Any] | None = None
    error: str | None = None
    config: dict[str, Any] | None = None
    env: dict[str, Any] | None = None


@dataclass(frozen=True)
class Stat:
    """Values of one quantity over the runs of a row."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof = 1); None with fewer than two values."""
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


@dataclass
class Row:
    """One method (and variant) on one dataset: its runs and their statistics."""

    dataset: str
    method: str
    variant: str | None
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.method} / {self.variant}" if self.variant else self.method

    def with_status(self, status: str) -> list[RunRecord]:
        return [r for r in self.runs if r.status == status]

    @property
    def done(self) -> list[RunRecord]:
        return self.with_status("done")

    def _stat(self, values: Iterable[Any]) -> Stat:
        return Stat(tuple(float(v) for v in values if _is_number(v)))

    def metric(self, protocol: str, key: str) -> Stat:
        return self._stat(r.metrics.get("results", {}).get(protocol, {}).get(key) for r in self.done)

    def cmc(self, protocol: str) -> list[list[float]]:
        curves = [r.metrics.get("results", {}).get(protocol, {}).get("cmc") for r in self.done]
        return [list(map(float, c)) for c in curves if c]

    def wall_time(self) -> Stat:
        return self._stat(r.metrics.get("wall_time_s") for r in self.done)

    def cluster_share(self) -> Stat:
        return self._stat(cluster_share(r.metrics) for r in self.done)

    def final_ari(self) -> Stat:
        return self._stat(final_epoch_value(r.metrics, "label_ari") for r in self.done)

    def epoch_series(self, key: str) -> list[list[float | None]]:
        """Per finished run, ``key`` of each epoch record (None where absent).

        The trainer logs no ``eval_*`` / ``val_*`` mAP on the last epoch, because the final evaluation
        scores that same model; a curve that was logged on earlier epochs gets its last point from there.
        """
        out = []
        for r in self.done:
            series = [_num_or_none(e.get(key)) for e in r.metrics.get("epochs", [])]
            if series and series[-1] is None and any(v is not None for v in series):
                series[-1] = final_map(r.metrics, key)
            out.append(series)
        return out

    def configs_differ(self) -> bool:
        """True when finished runs differ in config beyond seed, output and RegDB trial."""
        configs = [drop_keys(_with_defaults(r.config, r.method), _REPLICATE_KEYS)
                   for r in self.done if r.config is not None]
        return any(c != configs[0] for c in configs[1:])


def final_map(metrics: dict[str, Any], key: str) -> float | None:
    """The final evaluation's mAP behind a per-epoch curve key: ``eval_<protocol>_mAP`` from ``results``,
    ``val_<protocol>_mAP`` and ``val_mean_mAP`` from ``validation``; None when absent."""
    for prefix, section in (("eval_", "results"), ("val_", "validation")):
        if key.startswith(prefix) and key.endswith("_mAP"):
            scores = metrics.get(section) or {}
            name = key[len(prefix):-len("_mAP")]
            if prefix == "val_" and name == "mean":
                maps = [_num_or_none(v.get("mAP")) for v in scores.values() if isinstance(v, dict)]
                return float(sum(maps) / len(maps)) if maps and None not in maps else None
            return _num_or_none((scores.get(name) or {}).get("mAP"))
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num_or_none(v: Any) -> float | None:
    return float(v) if _is_number(v) else None


def cluster_share(metrics: dict[str, Any]) -> float | None:
    """Σ ``time_cluster_s`` over epochs / ``wall_time_s``; None when the method logs no clustering time."""
    times = [e["time_cluster_s"] for e in metrics.get("epochs", []) if _is_number(e.get("time_cluster_s"))]
    wall = metrics.get("wall_time_s")
    if not times or not _is_number(wall) or wall <= 0:
        return None
    return sum(times) / wall


def final_epoch_value(metrics: dict[str, Any], key: str) -> float | None:
    epochs = metrics.get("epochs") or []
    return _num_or_none(epochs[-1].get(key)) if epochs else None


@functools.cache
def _method_defaults(method: str) -> str | None:
    """The method's resolved default config as JSON (cached); None when it cannot be resolved here."""
    try:
        from reidkit.config import to_dict
        from reidkit.engine.run import resolve_run_config

        return json.dumps(to_dict(resolve_run_config(method)))
    except Exception:  # not installed here, or its defaults do not resolve: compare the files as they are
        return None


def _with_defaults(config: dict[str, Any], method: str) -> dict[str, Any]:
    """``config`` with the keys it lacks filled in from the method's current defaults.

    A run made before a config key existed has no entry for it (e.g. ``eval.every``); it ran as that key's
    default, so it must not count as a different configuration. Keys the run has are never changed.
    """
    defaults = _method_defaults(method)
    return deep_merge(json.loads(defaults), config) if defaults else config


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _labels_from_path(rel: Path, metrics: dict[str, Any] | None) -> dict[str, Any]:
    parts = rel.parts
    leaf = _LEAF.match(parts[-1]) if parts else None
    if leaf and len(parts) >= 3:
        return {"dataset": parts[0], "method": parts[1], "variant": "/".join(parts[2:-1]) or None,
                "seed": int(leaf.group(1)), "trial": int(leaf.group(2)) if leaf.group(2) else None}
    metrics = metrics or {}
    return {"dataset": str(metrics.get("dataset", "?")), "method": str(metrics.get("method", rel.as_posix())),
            "variant": None, "seed": metrics.get("seed"), "trial": None}


def read_run(out: Path, rel: Path, labels: dict[str, Any] | None = None) -> RunRecord:
    """The record of the run directory ``out / rel`` (labels from ``suite.json`` or from the path)."""
    run_dir = out / rel
    status = run_status(run_dir)
    metrics = _read_json(run_dir / "metrics.json") if status == "done" else None
    if status == "done" and metrics is None:
        status, error = "failed", "metrics.json is not readable JSON"
    else:
        failed = _read_json(run_dir / FAILED_FILE) if status == "failed" else None
        error = (failed or {}).get("error", "failed.json is not readable") if status == "failed" else None
    labels = labels or _labels_from_path(rel, metrics)
    config = None
    if (run_dir / "config.yaml").is_file():
        try:
            config = yaml.safe_load((run_dir / "config.yaml").read_text())
        except yaml.YAMLError:
            config = None
    return RunRecord(id=rel.as_posix(), dir=run_dir, status=status, metrics=metrics, error=error,
                     config=config if isinstance(config, dict) else None,
                     env=_read_json(run_dir / "env.json"), **labels)


def collect_runs(out: str | Path) -> tuple[dict[str, Any] | None, list[RunRecord]]:
    """``(suite.json or None, run records)``; the folder's files are the truth, the index gives order."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"benchmark folder not found: {out}")
    index = _read_json(out / SUITE_INDEX)
    records: list[RunRecord] = []
    seen: set[str] = set()
    for entry in (index or {}).get("runs", []):
        labels = {k: entry.get(k) for k in ("dataset", "method", "variant", "seed", "trial")}
        records.append(read_run(out, Path(entry["dir"]), labels))
        seen.add(Path(entry["dir"]).as_posix())
    found = {p.parent for name in ("metrics.json", FAILED_FILE) for p in out.rglob(name)}
    for run_dir in sorted(found):
        rel = run_dir.relative_to(out)
        if rel.as_posix() not in seen and rel.parts:
            records.append(read_run(out, rel))
    if not records:
        raise ConfigError(f"{out} holds no runs (no suite.json, metrics.json or failed.json below it)")
    return index, records


def group_rows(records: Iterable[RunRecord]) -> dict[str, list[Row]]:
    """Rows per dataset label, in first-seen order."""
    tables: dict[str, dict[tuple, Row]] = {}
    for r in records:
        rows = tables.setdefault(r.dataset, {})
        key = (r.method, r.variant)
        rows.setdefault(key, Row(r.dataset, r.method, r.variant)).runs.append(r)
    return {dataset: list(rows.values()) for dataset, rows in tables.items()}


def protocols(rows: Iterable[Row]) -> list[str]:
    """Every protocol any finished run of ``rows`` reports, in first-seen order."""
    names: dict[str, None] = {}
    for row in rows:
        for r in row.done:
            names.update(dict.fromkeys(r.metrics.get("results", {})))
    return list(names)


def directed_pairs(names: Iterable[str]) -> list[str]:
    """The ``<q>-to-<g>`` protocols among ``names``, without the one-versus-the-rest ``<q>-to-<g1>+<g2>``
    of 3-modality data (:func:`reidkit.data.datasets.generic.modality_protocols` names them)."""
    return [n for n in names if "+" not in n.split("-to-")[-1]]


def epoch_keys(rows: Iterable[Row], prefix: str = "eval_", suffix: str = "_mAP") -> list[str]:
    """Epoch-record keys like ``eval_<protocol>_mAP`` that any finished run logged."""
    keys: dict[str, None] = {}
    for row in rows:
        for r in row.done:
            for e in r.metrics.get("epochs", []):
                keys.update(dict.fromkeys(k for k in e if k.startswith(prefix) and k.endswith(suffix)))
    return list(keys)


def dataset_caption(rows: list[Row]) -> str:
    """``synthetic, preset standard`` from the finished runs' metrics.json."""
    for row in rows:
        for r in row.done:
            name = r.metrics.get("dataset", "?")
            preset = r.metrics.get("preset")
            return f"{name}, preset {preset}" if preset else str(name)
    return "no finished run"


def environment_summary(records: Iterable[RunRecord]) -> dict[str, list[str]]:
    """The distinct versions, commits and devices the finished runs were measured with."""
    keys = ("reidkit", "git_commit", "torch", "device", "gpu", "cpu", "cpu_threads")
    seen: dict[str, dict[str, None]] = {k: {} for k in keys}
    for r in records:
        if r.status == "done" and r.env:
            for k in keys:
                if r.env.get(k) is not None:
                    value = str(r.env[k])
                    if k == "git_commit":  # short hash; "+dirty" when tracked files had local changes
                        value = value[:12] + ("+dirty" if r.env.get("git_dirty") else "")
                    seen[k][value] = None
    return {k: list(v) for k, v in seen.items() if v}
