"""``reidkit report --collect``: the committed result files of a benchmark folder, one run, or a part of one.

``collect("runs/bench-pretrained")`` writes one result file (:mod:`reidkit.bench.results_file`) per finished
run to ``benchmarks/results/<suite>/<run id>.json`` and the suite's ``index.json`` there (its name, file,
description and every run id it has, so the page can say which seeds are still missing). The source may
also be a folder inside a benchmark folder (one run, or ``<bench>/synthetic-standard``): the suite and the
labels then come from the ``suite.json`` above it. A run directory outside any benchmark folder needs
``into``; its suite is that folder's name.

Collecting is idempotent: a file that would not change is not written, unfinished and failed runs are
skipped (and listed), and nothing collected earlier is removed, so re-collecting after more seeds have
finished only adds their files.

The suite file as it is now decides which runs belong to the suite: a benchmark folder can hold runs of an
earlier version of it (a variant renamed, a recipe moved to another suite), and its ``suite.json`` still
lists them. When the suite file is found in this checkout, such runs are not collected (they are listed as
"not in the suite file"), the index lists the suite file's runs, and result files already collected for
runs it no longer has are named in the summary (to remove by hand: collecting never deletes).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reidkit.bench.results import RunRecord, collect_runs, read_run
from reidkit.bench.results_file import INDEX, dumps, result_of, write_if_changed
from reidkit.bench.runner import FAILED_FILE, SUITE_INDEX
from reidkit.config import ConfigError, load_yaml

DEFAULT_ROOT = Path("benchmarks") / "results"


@dataclass
class Collected:
    suite: str
    into: Path
    written: dict[str, str] = field(default_factory=dict)  # run id -> new, updated, unchanged
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (run id, its status or why it is left out)
    stale: list[str] = field(default_factory=list)  # result files in ``into`` of runs the suite file lacks

    def summary(self) -> str:
        counts = {s: sum(v == s for v in self.written.values()) for s in ("new", "updated", "unchanged")}
        text = (f"{self.suite}: {len(self.written)} result files in {self.into} ("
                + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ")")
        if self.skipped:
            text += f"; {len(self.skipped)} not collected:\n" + "\n".join(
                f"  {run_id} ({status})" for run_id, status in self.skipped)
        if self.stale:
            text += (f"\n{len(self.stale)} result files in {self.into} are of runs the suite file no longer has "
                     "(remove them if they are not meant to stay on the page):\n"
                     + "\n".join(f"  {run_id}" for run_id in self.stale))
        return text


def relative(path: str | Path) -> str:
    """``path`` relative to the working directory (the repository root) when inside it, else absolute."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def locate_suite_file(recorded: str | None, suite: str) -> str | None:
    """The suite file a benchmark folder names, found in this checkout when it was run from another one
    (``/tmp/wt/benchmarks/synthetic.yaml`` -> ``benchmarks/synthetic.yaml``); None when not found."""
    if not recorded:
        return None
    path = Path(recorded)
    tails = [Path(*path.parts[i:]) for i in range(1, len(path.parts))] if path.is_absolute() else [path]
    for candidate in tails:
        if candidate.is_file():
            try:
                name = (load_yaml(candidate.read_text()) or {}).get("name", candidate.stem)
            except (yaml.YAMLError, AttributeError):
                continue
            if name == suite:
                return relative(candidate)
    return relative(path) if path.is_file() else None


def _config_files(suite_file: str | None) -> dict[str, str | None]:
    """Run id -> the per-method config file the suite gives it (relative), from the suite file as it is."""
    if suite_file is None:
        return {}
    from reidkit.bench.suite import load_suite

    try:
        jobs = load_suite(suite_file).jobs
    except ConfigError:
        return {}
    return {job.id: relative(job.config_file) if job.config_file else None for job in jobs}


def _find_bench(source: Path) -> tuple[Path, str] | None:
    """``(benchmark folder, source's path below it)`` when ``source`` is one or lies inside one."""
    for root in (source, *source.resolve().parents):
        if (root / SUITE_INDEX).is_file():
            return root, source.resolve().relative_to(root.resolve()).as_posix()
    return None


def _standalone(source: Path) -> RunRecord:
    """A run directory of its own, labelled ``<dataset>[-<preset>]/<method>/seed<k>``."""
    record = read_run(source.parent, Path(source.name))
    m = record.metrics or {}
    dataset = str(m.get("dataset", "?")) + (f"-{m['preset']}" if m.get("preset") else "")
    record.dataset, record.method = dataset, str(m.get("method", record.method))
    record.seed, record.variant = m.get("seed", record.seed), None
    record.id = f"{dataset}/{record.method}/seed{record.seed}"
    return record


def collect(source: str | Path, into: str | Path | None = None) -> Collected:
    """Write the result files of every finished run of ``source``; see the module docstring."""
    source = Path(source)
    if not source.is_dir():
        raise ConfigError(f"--collect: folder not found: {source}")
    found = _find_bench(source)
    if found is not None:
        bench, below = found
        index, records = collect_runs(bench)
        index = index or {}
        suite = str(index.get("suite") or bench.name)
        if below != ".":
            records = [r for r in records if r.id == below or r.id.startswith(below + "/")]
        expected = [r["id"] for r in index.get("runs", [])]
    elif (source / "metrics.json").is_file() or (source / FAILED_FILE).is_file():
        if into is None:
            raise ConfigError(f"--collect {source}: a run outside a benchmark folder needs --into "
                              "(benchmarks/results/<suite>); its suite is that folder's name")
        index, records = {}, [_standalone(source)]
        suite, expected = Path(into).name, [records[0].id]
    else:
        raise ConfigError(f"--collect {source}: neither a benchmark folder (suite.json) nor a run directory")
    if not records:
        raise ConfigError(f"--collect {source}: no run below it")
    into = Path(into) if into is not None else DEFAULT_ROOT / suite
    old = _read_index(into / INDEX, suite)
    suite_file = locate_suite_file(index.get("suite_file"), suite) or old.get("suite_file")
    config_files = _config_files(suite_file)
    out = Collected(suite, into)
    current = found is not None and bool(config_files)  # the suite file as it is decides what belongs
    for r in records:
        if current and r.id not in config_files:
            out.skipped.append((r.id, f"not in {suite_file}"))
        elif r.status != "done":
            out.skipped.append((r.id, r.status))
        else:
            doc = result_of(r, suite=suite, suite_file=suite_file, config_file=config_files.get(r.id))
            out.written[r.id] = write_if_changed(into / f"{r.id}.json", dumps(doc))
    if current:
        runs = list(config_files)  # the suite file's order
        out.stale = sorted(set(_collected_ids(into)) - set(config_files))
    else:
        runs = list(dict.fromkeys([*old.get("runs", []), *expected, *out.written]))  # the suite's order
    description = index.get("description") or old.get("description", "")
    doc = {"suite": suite, "suite_file": suite_file, "description": description, "runs": runs}
    write_if_changed(into / INDEX, dumps(doc))
    return out


def _collected_ids(into: Path) -> list[str]:
    """The run ids of the result files already in ``into`` (``<run id>.json``, the index aside)."""
    return [path.relative_to(into).with_suffix("").as_posix() for path in into.rglob("*.json") if path.name != INDEX]


def _read_index(path: Path, suite: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    index = json.loads(path.read_text())
    if index.get("suite") != suite:
        raise ConfigError(f"{path.parent} holds the results of suite '{index.get('suite')}', not "
                          f"'{suite}'; choose another --into")
    return index
