"""The side-by-side report of a benchmark folder, as Markdown or as HTML with embedded plots.

One table per dataset, one row per method (and variant), one column group per protocol (Rank-1, mAP,
mINP as mean ± sample std over runs), then the number of runs, wall time, the share of wall time spent
clustering and the last epoch's pseudo-label ARI. Failed and unfinished runs are listed, never dropped
silently. Published numbers (``reference.yaml``) come in a block of their own, never in the measured table.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reidkit.bench.reference import KINDS, ReferenceResult, load_reference, select
from reidkit.bench.results import (
    Row,
    RunRecord,
    Stat,
    collect_runs,
    dataset_caption,
    environment_summary,
    group_rows,
    protocols,
)

DASH = "–"
NUMERIC_COLUMNS = {"R1", "mAP", "mINP", "n", "wall (s)", "clustering (%)", "final ARI"}
_SHORT = {"visible": "V", "infrared": "IR", "thermal": "T", "nir": "NIR", "tir": "TIR"}

NOTES = (
    "Scores are percentages: mean ± sample standard deviation (ddof = 1) over the finished runs of a row "
    "(seeds, and RegDB trials where a suite has them); n is that number of runs, and the std is shown "
    f"as {DASH} when n = 1.",
    "Every score is of the last epoch's model: no checkpoint, epoch or hyper-parameter was chosen on test "
    "data. All rows of a table ran through the same engine, protocols and evaluation code.",
    "wall: seconds per run, training and evaluation; clustering: share of that time spent clustering "
    "(Σ time_cluster_s over epochs / wall), shown only for methods that log it; final ARI: adjusted Rand "
    "index of the last epoch's pseudo-labels against the hidden identities (a diagnostic the methods "
    "never see; 1.00 for a supervised method, whose labels are the identities).",
)


@dataclass
class Table:
    """A table before rendering: column groups (title, column names) and rows of cell strings."""

    title: str
    caption: str
    groups: list[tuple[str, list[str]]]
    rows: list[list[str]] = field(default_factory=list)
    legend: str = ""
    footnotes: list[str] = field(default_factory=list)


@dataclass
class Report:
    out: Path
    index: dict[str, Any] | None
    records: list[RunRecord]
    tables: dict[str, list[Row]]
    reference: list[ReferenceResult] = field(default_factory=list)
    reference_matched: bool = True
    split: str = "test"

    @property
    def heading(self) -> str:
        title = (self.index or {}).get("suite")
        return (f"Benchmark report{f': {title}' if title else ''}"
                + (" (validation split: for tuning, not results)" if self.split == "validation" else ""))


def build_report(out: str | Path, *, reference: str | Path | None = None,
                 reference_required: bool = False, split: str = "test") -> Report:
    """Read a benchmark folder (and the reference file, if any) into a :class:`Report`.

    With ``reference_required`` false (the default file) only published numbers on the datasets measured
    here are kept; when given explicitly and none matches, all of them are shown, labelled as such.
    ``split="validation"`` tabulates the runs' validation scores (``data.val_ids``) instead of the test
    scores, and leaves the published numbers out (they are test scores).
    """
    index, records = collect_runs(out)
    if split == "validation":
        for r in records:
            if r.metrics is not None:
                r.metrics = {**r.metrics, "results": r.metrics.get("validation", {})}
        reference = None
    elif split != "test":
        from reidkit.config import ConfigError

        raise ConfigError(f"--split {split!r}: choose test or validation")
    report = Report(Path(out), index, records, group_rows(records), split=split)
    if reference is not None:
        measured = {r.metrics.get("dataset") for r in records if r.status == "done"}
        chosen, matched = select(load_reference(reference), measured)
        if matched or reference_required:
            report.reference, report.reference_matched = chosen, matched
    return report


# ------------------------------------------------------------------------------------------------------
# cells
# ------------------------------------------------------------------------------------------------------
def short_protocol(name: str) -> str:
    """``visible-to-infrared`` -> ``V→IR``; other names unchanged."""
    if "-to-" not in name:
        return name
    q, g = name.split("-to-", 1)
    return f"{_SHORT.get(q, q)}→{_SHORT.get(g, g)}"


def fmt_stat(stat: Stat, *, scale: float = 1.0, digits: int = 1, suffix: str = "") -> str:
    """``mean ± std``; ``mean ± –`` for one value; ``n/a`` for none."""
    if stat.n == 0:
        return "n/a"
    std = DASH if stat.std is None else f"{scale * stat.std:.{digits}f}"
    return f"{scale * stat.mean:.{digits}f} ± {std}{suffix}"


def runs_cell(row: Row) -> str:
    done = len(row.done)
    other = [f"{len(row.with_status(s))} {s}" for s in ("failed", "pending", "running", "busy")
             if row.with_status(s)]
    return f"{done} ({', '.join(other)})" if other else str(done)


def dataset_table(dataset: str, rows: list[Row], split: str = "test") -> Table:
    names = protocols(rows)
    groups = [(short_protocol(p), ["R1", "mAP", "mINP"]) for p in names]
    groups += [("", ["n", "wall (s)", "clustering (%)", "final ARI"])]
    table = Table(title=dataset, caption=dataset_caption(rows), groups=[("", ["method"]), *groups])
    for row in rows:
        if row.done:
            cells = [fmt_stat(row.metric(p, k), scale=100) for p in names for k in ("rank1", "mAP", "mINP")]
        else:
            cells = ["failed" if row.with_status("failed") else "not run"] * (3 * len(names))
        label = row.label + (" †" if row.configs_differ() else "")
        table.rows.append([label, *cells, runs_cell(row), fmt_stat(row.wall_time(), digits=0),
                           fmt_stat(row.cluster_share(), scale=100), fmt_stat(row.final_ari(), digits=2)])
    table.legend = "; ".join(f"{short_protocol(p)} = {p}" for p in names if short_protocol(p) != p)
    if any(row.configs_differ() for row in rows):
        table.footnotes.append("† the runs of this row differ in configuration beyond seed and trial "
                               "(a suite changed between invocations?); compare with care.")
    if not names and any(row.done for row in rows):
        other = "validation" if split == "test" else "test"
        why = " (eval.test=false: tuning runs)" if split == "test" else " (data.val_ids=0: no validation split)"
        table.footnotes.append(f"No finished run of this table has {split} scores{why}; "
                               f"try `reidkit report --split {other}`.")
    return table


def reference_tables(results: Sequence[ReferenceResult]) -> list[Table]:
    tables = []
    for kind, caption in KINDS.items():
        chosen = [r for r in results if r.kind == kind]
        if not chosen:
            continue
        table = Table(title=kind, caption=caption, groups=[("", [
            "method", "setting", "dataset", "protocol", "R1", "mAP", "mINP", "provenance", "source"])])
        for r in chosen:
            num = [DASH if v is None else v for v in (r.rank1, r.mAP, r.mINP)]
            venue = f" ({r.venue})" if r.venue else ""
            source = r.source + (f"; {r.note}" if r.note else "")
            table.rows.append([r.method + venue, r.setting, r.dataset, r.protocol, *num, r.provenance,
                               source])
        tables.append(table)
    return tables


def failures(report: Report) -> list[RunRecord]:
    return [r for r in report.records if r.status == "failed"]


def unfinished(report: Report) -> list[RunRecord]:
    return [r for r in report.records if r.status not in ("done", "failed")]


def environment_line(report: Report) -> str:
    env = environment_summary(report.records)
    if not env:
        return ""
    parts = [f"{k} {', '.join(v)}" for k, v in env.items()]
    return "Measured with " + "; ".join(parts) + "."


REFERENCE_INTRO = (
    "Numbers published by other projects on real datasets, each with its source and how it was obtained. "
    "They were **not measured by reidkit**: backbones, protocols, samplers and checkpoint selection differ "
    "(most published unsupervised VI-ReID numbers are of the best epoch on the test set), so they are "
    "orientation only, never rows of the tables above. Scores in %."
)


# ------------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------------
def markdown_table(table: Table) -> list[str]:
    """One table as Markdown lines (numeric columns right-aligned)."""
    header = [f"{g} {c}".strip() for g, cols in table.groups for c in cols]
    rule = ["---:" if c in NUMERIC_COLUMNS else "---" for _, cols in table.groups for c in cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
    return lines


def render_markdown(report: Report, images: Sequence[tuple[str, str]] = ()) -> str:
    """The report as Markdown; ``images`` are (caption, path) pairs to link under the tables."""
    lines = [f"# {report.heading}", ""]
    lines += [f"- {note}" for note in NOTES]
    env = environment_line(report)
    lines += [f"- {env}" if env else "", ""]
    for dataset, rows in report.tables.items():
        table = dataset_table(dataset, rows, report.split)
        lines += [f"## {table.title} ({table.caption})", "", *markdown_table(table), ""]
        if table.legend:
            lines += [table.legend, ""]
        lines += [*table.footnotes, ""] if table.footnotes else []
    failed = failures(report)
    if failed:
        lines += ["## Failed runs", ""]
        lines += [f"- `{r.id}`: {r.error} (see `{r.id}/failed.json`)" for r in failed] + [""]
    pending = unfinished(report)
    if pending:
        lines += ["## Unfinished runs", "", *[f"- `{r.id}`: {r.status}" for r in pending], ""]
    for caption, path in images:
        lines += [f"![{caption}]({path})", ""]
    if report.reference:
        lines += reference_markdown(report.reference, report.reference_matched)
    return "\n".join(lines).rstrip() + "\n"


def reference_markdown(results: Sequence[ReferenceResult], matched: bool = True) -> list[str]:
    """The block of published numbers as Markdown lines, apart from the measured tables."""
    lines = ["## Published numbers (not measured here)", "", REFERENCE_INTRO, ""]
    if not matched:
        lines += ["None of these is on a dataset measured above.", ""]
    for table in reference_tables(results):
        lines += [f"### {table.caption}", "", *markdown_table(table), ""]
    return lines


# ------------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td.l{text-align:left}.ref td,.ref th{background:#fbf8ef}
.plots img{max-width:640px;margin:4px}caption{text-align:left;font-weight:bold;padding:4px 0}
.note{color:#555;font-size:13px}"""


def _html_table(table: Table, css: str = "") -> str:
    e = html.escape
    top = "".join(f'<th colspan="{len(cols)}">{e(g)}</th>' for g, cols in table.groups)
    sub = "".join(f"<th>{e(c)}</th>" for _, cols in table.groups for c in cols)
    left = [c not in NUMERIC_COLUMNS for _, cols in table.groups for c in cols]
    body = "".join("<tr>" + "".join(f"<td{' class=l' if lf else ''}>{e(c)}</td>" for c, lf in zip(row, left))
                   + "</tr>" for row in table.rows)
    cls = f' class="{css}"' if css else ""
    return (f"<table{cls}><caption>{e(table.caption)}</caption><thead><tr>{top}</tr><tr>{sub}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def render_html(report: Report, plots: Sequence[Any] = ()) -> str:
    """A standalone HTML page: the tables, then the plots embedded as PNG data URIs."""
    e = html.escape
    title = (report.index or {}).get("suite")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'>"
             f"<title>reidkit report {e(title or '')}</title><style>{_CSS}</style></head><body>"
             f"<h1>{e(report.heading)}</h1>",
             "<ul class='note'>" + "".join(f"<li>{e(n)}</li>" for n in NOTES)
             + (f"<li>{e(environment_line(report))}</li>" if environment_line(report) else "") + "</ul>"]
    for dataset, rows in report.tables.items():
        table = dataset_table(dataset, rows, report.split)
        parts.append(f"<h2>{e(table.title)}</h2>{_html_table(table)}")
        parts += [f"<p class='note'>{e(t)}</p>" for t in [table.legend, *table.footnotes] if t]
    failed = failures(report)
    if failed:
        parts.append("<h2>Failed runs</h2><ul>" + "".join(
            f"<li><code>{e(r.id)}</code>: {e(r.error or '')}</li>" for r in failed) + "</ul>")
    pending = unfinished(report)
    if pending:
        parts.append("<h2>Unfinished runs</h2><ul>" + "".join(
            f"<li><code>{e(r.id)}</code>: {e(r.status)}</li>" for r in pending) + "</ul>")
    if plots:
        parts.append("<h2>Plots</h2><div class='plots'>")
        for plot in plots:
            data = base64.b64encode(plot.png()).decode()
            parts.append(f"<figure><img alt='{e(plot.title)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption class='note'>{e(plot.title)}</figcaption></figure>")
        parts.append("</div>")
    if report.reference:
        parts.append("<h2>Published numbers (not measured here)</h2>"
                     f"<p class='note'>{e(REFERENCE_INTRO)}</p>")
        if not report.reference_matched:
            parts.append("<p class='note'>None of these is on a dataset measured above.</p>")
        parts += [_html_table(t, "ref") for t in reference_tables(report.reference)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out: str | Path, *, fmt: str = "markdown", output: str | Path | None = None,
                 reference: str | Path | None = None, reference_required: bool = False,
                 plots_dir: str | Path | None = None, split: str = "test") -> str:
    """Render the report of ``out``; write it to ``output`` when given. Returns the text.

    Markdown with ``plots_dir`` also writes the plots there as PNG files and links them (relative to
    ``output``'s folder when there is one). HTML always embeds the plots.
    """
    from reidkit.bench.plots import report_plots

    report = build_report(out, reference=reference, reference_required=reference_required, split=split)
    if fmt == "html":
        text = render_html(report, report_plots(report.tables, report.split))
    elif fmt == "markdown":
        images = []
        if plots_dir is not None:
            folder = Path(plots_dir)
            folder.mkdir(parents=True, exist_ok=True)
            base = Path(output).parent if output else Path.cwd()
            for plot in report_plots(report.tables, report.split):
                path = folder / f"{plot.name}.png"
                path.write_bytes(plot.png())
                images.append((plot.title, _relative(path, base)))
        text = render_markdown(report, images)
    else:
        from reidkit.config import ConfigError

        raise ConfigError(f"--format {fmt!r}: choose markdown or html")
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    return text


def _relative(path: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
