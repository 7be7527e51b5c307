"""Tables of the IMSL ladder (benchmarks/imsl_ladder.yaml), copied from the runs' metrics.json.

    .venv/bin/python benchmarks/imsl_ladder.py runs/imsl-ladder                 # print the tables
    .venv/bin/python benchmarks/imsl_ladder.py runs/imsl-ladder --write benchmarks/imsl.md

With ``--write`` the text between ``<!-- ladder:begin -->`` and ``<!-- ladder:end -->`` in the file is
replaced; everything else in it is left alone. Numbers are percentages of the fractions in metrics.json:
mean over the finished seeds, +- the sample standard deviation when there are at least two.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from reidkit.bench.results import Row, Stat, collect_runs, final_epoch_value, group_rows, protocols

RUNGS = ("kmeans", "mmc", "mmc+mil", "mmc+mil+smr", "mmc+mil+smr+mmre", "smr-silhouette")
SUPERVISED = "dc-baseline"
BEGIN, END = "<!-- ladder:begin -->", "<!-- ladder:end -->"


def pct(stat: Stat) -> str:
    if stat.mean is None:
        return "-"
    text = f"{100 * stat.mean:.1f}"
    return text + (f" ± {100 * stat.std:.1f}" if stat.std is not None else "")


def mean_over_protocols(row: Row, names: list[str], key: str) -> Stat:
    """Per run, the mean of ``key`` over the protocols; then the statistics over runs."""
    values = []
    for r in row.done:
        results = r.metrics.get("results", {})
        got = [results[p][key] for p in names if p in results and key in results[p]]
        if len(got) == len(names):
            values.append(statistics.fmean(got))
    return Stat(tuple(values))


def order(rows: list[Row]) -> list[Row]:
    def rank(row: Row) -> tuple[int, str]:
        if row.method == SUPERVISED:
            return (len(RUNGS) + 1, "")
        return (RUNGS.index(row.variant) if row.variant in RUNGS else len(RUNGS), row.variant or "")
    return sorted(rows, key=rank)


def label(row: Row) -> str:
    return f"{SUPERVISED} (supervised)" if row.method == SUPERVISED else (row.variant or row.method)


def dataset_tables(dataset: str, rows: list[Row]) -> list[str]:
    rows = order(rows)
    names = protocols(rows)
    pairs = [p for p in names if "+" not in p.split("-to-")[-1]]
    supervised = next((r for r in rows if r.method == SUPERVISED and r.done), None)
    sup_map = mean_over_protocols(supervised, pairs, "mAP").mean if supervised else None
    out = [f"#### `{dataset}`", ""]
    head = "| rung | seeds | " + " | ".join(f"{p} mAP" for p in names) + " |"
    out += [head, "|" + "---|" * (2 + len(names))]
    for row in rows:
        cells = [pct(row.metric(p, "mAP")) for p in names]
        out.append(f"| {label(row)} | {len(row.done)} | " + " | ".join(cells) + " |")
    out += ["", "| rung | seeds | " + " | ".join(f"{p} R1" for p in names) + " |", "|" + "---|" * (2 + len(names))]
    for row in rows:
        cells = [pct(row.metric(p, "rank1")) for p in names]
        out.append(f"| {label(row)} | {len(row.done)} | " + " | ".join(cells) + " |")
    out += ["", "| rung | seeds | mean mAP (pairs) | % of supervised | mean R1 (pairs) | final ARI | final NMI "
                "| clusters (last epoch) | wall time (min) |", "|" + "---|" * 9]
    for row in rows:
        m = mean_over_protocols(row, pairs, "mAP")
        share = f"{100 * m.mean / sup_map:.0f} %" if m.mean is not None and sup_map else "-"
        clusters = Stat(tuple(v for v in (final_epoch_value(r.metrics, "clusters") for r in row.done)
                              if v is not None))
        nmi = Stat(tuple(v for v in (final_epoch_value(r.metrics, "label_nmi") for r in row.done) if v is not None))
        wall = row.wall_time()
        ari = row.final_ari() if row.method != SUPERVISED else Stat(())
        out.append(f"| {label(row)} | {len(row.done)} | {pct(m)} | {share} | "
                   f"{pct(mean_over_protocols(row, pairs, 'rank1'))} | {pct(ari)} | "
                   f"{pct(nmi) if row.method != SUPERVISED else '-'} | "
                   f"{clusters.mean:.0f} | " if clusters.mean is not None else "- | ")
        out[-1] += f"{wall.mean / 60:.1f} |" if wall.mean is not None else "- |"
    pending = [r.id for row in rows for r in row.runs if r.status != "done"]
    if pending:
        out += ["", f"Not finished ({len(pending)}): " + ", ".join(f"`{p}`" for p in pending)]
    return out + [""]


def tables(folder: Path) -> str:
    _, records = collect_runs(folder)
    lines = []
    for dataset, rows in group_rows(records).items():
        lines += dataset_tables(dataset, rows)
    commits = sorted({(r.env or {}).get("git_commit", "?")[:8] for r in records if r.status == "done"})
    lines.append(f"Runs read from `{folder}`; code commits: {', '.join(commits) or '-'}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the bench output folder (reidkit bench --output)")
    parser.add_argument("--write", type=Path, help="markdown file whose ladder section to replace")
    args = parser.parse_args(argv)
    text = tables(args.folder)
    if not args.write:
        print(text)
        return 0
    doc = args.write.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{args.write} has no {BEGIN} ... {END} section", file=sys.stderr)
        return 1
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    args.write.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
