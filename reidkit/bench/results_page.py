"""``reidkit report --results``: the one results page, from the committed per-run result files.

One table per dataset and preset, one row per method and recommended configuration. Which rows those are
is written down in ``<results>/page.yaml`` (without it, every suite's every row)::

    title: Results
    intro: one paragraph above the tables
    rows:                          # in table order: <suite>/<method>[/<variant>]
      - synthetic/chcr
      - synthetic-random-init/chcr
    reference: ../reference.yaml   # published numbers (relative to page.yaml), shown in a block of their own

The scores, run counts, wall time, clustering share and final ARI are the benchmark report's own cells
(:func:`reidkit.bench.report.dataset_table`); the page adds which configuration each row is (suite file,
variant, per-method config file), its init (``model.weights``), budget (steps = ``optim.epochs`` x
``optim.iterations``), seeds and the commit its runs were measured at. A run the suite has but no result
file holds counts as pending; a row with none collected yet is listed below the tables.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reidkit.bench.reference import load_reference, select
from reidkit.bench.report import (
    NOTES,
    dataset_table,
    markdown_table,
    reference_markdown,
)
from reidkit.bench.results import Row, RunRecord, dataset_caption, environment_summary
from reidkit.bench.results_file import load_results, to_record
from reidkit.config import ConfigError

PAGE = "page.yaml"
_PAGE_KEYS = ("title", "intro", "rows", "reference")
_LEAF = re.compile(r"^seed(\d+)(?:-trial(\d+))?$")

COLUMN_NOTES = (
    "config: the suite file the runs came from (with the variant in the method column, and the method's "
    "config file where the suite gives one); init: `model.weights`; steps: the training budget, "
    "`optim.epochs` x `optim.iterations`; seeds: those of the collected runs (with RegDB trials where the "
    "suite has them); commit: the code the runs were measured at (+dirty: with local changes); pending: "
    "in the suite, but no result file collected yet.",
)


@dataclass
class PageRow:
    suite: str
    suite_file: str | None
    row: Row
    config_files: list[str] = field(default_factory=list)


@dataclass
class Page:
    title: str
    intro: str
    tables: dict[str, list[PageRow]] = field(default_factory=dict)
    missing: list[tuple[str, str, int]] = field(default_factory=list)  # (row, dataset label, runs expected)
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: list = field(default_factory=list)
    reference_matched: bool = True

    @property
    def records(self) -> list[RunRecord]:
        return [r for rows in self.tables.values() for pr in rows for r in pr.row.runs]


def load_spec(folder: Path, indexes: dict[str, dict[str, Any]], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """``page.yaml`` validated, or the default: every (suite, method, variant) of the suites' indexes and
    the result files, in that order."""
    path = folder / PAGE
    if not path.is_file():
        listed = [(suite, *parsed[1:3]) for suite, index in indexes.items()
                  for run_id in index.get("runs", []) if (parsed := _split_id(run_id))]
        found = [(d["suite"], d["method"], d.get("variant")) for d in docs]
        rows = list(dict.fromkeys(selector(*key) for key in [*listed, *found]))
        return {"title": "Results", "intro": "", "rows": rows, "reference": None}
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    unknown = [k for k in spec if k not in _PAGE_KEYS] if isinstance(spec, dict) else ["(not a mapping)"]
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; known: {', '.join(_PAGE_KEYS)}")
    rows = spec.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, str) and r.count("/") >= 1 for r in rows):
        raise ConfigError(f"{path}: rows must be a list of '<suite>/<method>[/<variant>]'")
    ref = spec.get("reference")
    return {"title": str(spec.get("title", "Results")), "intro": str(spec.get("intro", "")).strip(),
            "rows": rows, "reference": (path.parent / ref) if ref else None}


def selector(suite: str, method: str, variant: str | None) -> str:
    return "/".join([suite, method, *([variant] if variant else [])])


def _split_id(run_id: str) -> tuple[str, str, str | None, int, int | None] | None:
    """``<dataset>/<method>[/<variant>]/seed<k>[-trial<t>]`` -> its labels; None for another shape."""
    parts = run_id.split("/")
    leaf = _LEAF.match(parts[-1])
    if len(parts) < 3 or not leaf:
        return None
    trial = int(leaf.group(2)) if leaf.group(2) else None
    return parts[0], parts[1], "/".join(parts[2:-1]) or None, int(leaf.group(1)), trial


def _runs_by_label(index: dict[str, Any], mine: list[dict[str, Any]], key: tuple[str, str | None],
                   folder: Path) -> dict[str, list[RunRecord]]:
    """Dataset label -> the runs of one (method, variant) of a suite: collected ones from their result files,
    pending ones for every run the suite's index has and no file holds, in seed order."""
    done = {d["id"]: to_record(d, d["_path"]) for d in mine}
    labels: dict[str, list[RunRecord]] = {}
    for run_id in index.get("runs", []):
        parsed = _split_id(run_id)
        if parsed and parsed[1:3] == key:
            labels.setdefault(parsed[0], [])
            if run_id not in done:
                labels[parsed[0]].append(RunRecord(run_id, parsed[0], *key, *parsed[3:], folder / run_id,
                                                   "pending"))
    for record in done.values():
        labels.setdefault(record.dataset, []).append(record)
    for runs in labels.values():
        runs.sort(key=lambda r: (r.seed if r.seed is not None else -1, r.trial or 0))
    return labels


def build_page(folder: str | Path, *, reference: str | Path | None = None,
               use_reference: bool = True) -> Page:
    """Read a results folder (``benchmarks/results``) into a :class:`Page`."""
    folder = Path(folder)
    indexes, docs = load_results(folder)
    spec = load_spec(folder, indexes, docs)
    page = Page(spec["title"], spec["intro"])
    for sel in spec["rows"]:
        suite, method, *rest = sel.split("/")
        variant = "/".join(rest) or None
        if suite not in indexes and not any(d["suite"] == suite for d in docs):
            raise ConfigError(f"{folder / PAGE}: row {sel}: no results of suite '{suite}' in {folder}")
        index = page.suites.setdefault(suite, indexes.get(suite, {}))
        mine = [d for d in docs if (d["suite"], d["method"], d.get("variant")) == (suite, method, variant)]
        for label, runs in _runs_by_label(index, mine, (method, variant), folder / suite).items():
            row = Row(label, method, variant, runs)
            if not row.done:
                page.missing.append((sel, label, len(runs)))
                continue
            used = [d for d in mine if d["id"] in {r.id for r in row.done}]
            suite_file = next((d["suite_file"] for d in used if d.get("suite_file")), index.get("suite_file"))
            files = list(dict.fromkeys(d["config_file"] for d in used if d.get("config_file")))
            page.tables.setdefault(dataset_caption([row]), []).append(PageRow(suite, suite_file, row, files))
    if use_reference and (reference or spec["reference"]):
        measured = {r.metrics.get("dataset") for r in page.records if r.status == "done"}
        chosen = select(load_reference(reference or spec["reference"]), measured)
        page.reference, page.reference_matched = chosen
    return page


# ------------------------------------------------------------------------------------------------------
# cells
# ------------------------------------------------------------------------------------------------------
def spans(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    values, out = sorted(set(values)), []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


def _distinct(values) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if v is not None)) or "?"


def _get(config: dict[str, Any] | None, *keys: str) -> Any:
    node: Any = config or {}
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def config_cell(pr: PageRow, base: Path | None) -> str:
    cell = "?"
    if pr.suite_file:
        link = os.path.relpath(pr.suite_file, base) if base is not None else pr.suite_file
        cell = f"[{Path(pr.suite_file).name}]({Path(link).as_posix()})"
    return cell + "".join(f" + `{f}`" for f in pr.config_files)


def init_cell(row: Row) -> str:
    weights = [_get(r.config, "model", "weights") for r in row.done]
    return _distinct(Path(w).name if isinstance(w, str) and "/" in w else w for w in weights)


def steps_cell(row: Row) -> str:
    steps = []
    for r in row.done:
        epochs, iterations = _get(r.config, "optim", "epochs"), _get(r.config, "optim", "iterations")
        steps.append(f"{epochs * iterations:,}" if isinstance(epochs, int) and isinstance(iterations, int)
                     else None)
    return _distinct(steps)


def seeds_cell(row: Row) -> str:
    seeds = spans([r.seed for r in row.done if r.seed is not None])
    trials = [r.trial for r in row.done if r.trial is not None]
    return seeds + (f" × trials {spans(trials)}" if trials else "")


def commit_cell(row: Row) -> str:
    return _distinct(str(r.env["git_commit"])[:12] + ("+dirty" if r.env.get("git_dirty") else "")
                     for r in row.done if r.env and r.env.get("git_commit"))


def page_table(title: str, rows: list[PageRow], base: Path | None):
    """The report's table of ``rows`` with the page's columns added around its cells."""
    table = dataset_table(title, [pr.row for pr in rows])
    first, *scores, last = table.groups
    table.groups = [("", [*first[1], "config", "init", "steps", "seeds"]), *scores,
                    ("", [*last[1], "commit"])]
    table.rows = [[cells[0], config_cell(pr, base), init_cell(pr.row), steps_cell(pr.row), seeds_cell(pr.row),
                   *cells[1:], commit_cell(pr.row)] for cells, pr in zip(table.rows, rows)]
    return table


# ------------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------------
def render_page(page: Page, *, command: str, base: Path | None = None) -> str:
    """The page as Markdown; links are relative to ``base`` (the page's folder) when given."""
    lines = [f"# {page.title}", ""]
    lines += [page.intro, ""] if page.intro else []
    lines += [f"Generated by `{command}` from the committed per-run result files; do not edit it by hand "
              "(benchmarks/README.md, \"The results page\").", ""]
    lines += [f"- {note}" for note in (*NOTES, *COLUMN_NOTES)]
    env = environment_summary(page.records)
    if env:
        lines.append("- Measured with " + "; ".join(f"{k} {', '.join(v)}" for k, v in env.items()) + ".")
    lines.append("")
    for title, rows in page.tables.items():
        table = page_table(title, rows, base)
        lines += [f"## {title}", "", *markdown_table(table), ""]
        lines += [table.legend, ""] if table.legend else []
        lines += [*table.footnotes, ""] if table.footnotes else []
    if page.missing:
        lines += ["## Rows without results yet", ""]
        lines += [f"- `{sel}` on `{label}`: {n} runs in the suite, none collected"
                  for sel, label, n in page.missing]
        lines.append("")
    described = [(s, i) for s, i in page.suites.items() if i.get("description") or i.get("suite_file")]
    if described:
        lines += ["## Suites", ""]
        for suite, index in described:
            where = index.get("suite_file")
            link = os.path.relpath(where, base) if where and base is not None else where
            name = f"[{Path(where).name}]({Path(link).as_posix()})" if where else f"`{suite}`"
            lines.append(f"- {name} (`{suite}`): {index.get('description', '')}".rstrip(": "))
        lines.append("")
    if page.reference:
        lines += reference_markdown(page.reference, page.reference_matched)
    return "\n".join(lines).rstrip() + "\n"
