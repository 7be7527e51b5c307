"""The time budgets of the synthetic benchmark, measured against their limits (issue 23, point 8).

Three limits, each on a 2-core CPU like the CI machine:

* the default ``reidkit run --method chcr`` (preset ``small``, the shipped init): 8 minutes;
* the command that makes the shipped weights (``reidkit pretrain --output ...``): 90 minutes, read from the
  card's ``wall_time_s`` beside the weights;
* the whole ``benchmarks/synthetic.yaml`` (18 runs): 90 minutes, as the sum of its runs' ``wall_time_s``
  (one at a time) and as the suite's elapsed time from ``suite.json`` (``reidkit bench --jobs 2``).

Usage::

    python benchmarks/budgets.py run-default --output runs/budget-chcr      # times the default command
    python benchmarks/budgets.py table --run runs/budget-chcr --bench runs/bench-pretrained
    python benchmarks/budgets.py estimate runs/budget-s24 runs/mask-sources/standard.mixed/imsl/smr ...

``estimate`` is for a machine where the whole suite was not run: from sample runs (any folders of finished
runs, e.g. one seed of each method and preset, run two at a time as ``--jobs 2`` does), each suite job is
given the mean ``wall_time_s`` of the samples of its method and preset, and the suite's elapsed time is
that sum over its jobs divided by ``--jobs`` (runs side by side, the tail of the last runs ignored).

``table`` prints one markdown row per budget: measured minutes, the limit, the share of the limit, and the
conditions (torch threads, the 1-minute load average before the run when this script ran it). Times taken
while other jobs shared the CPU are longer than on an idle machine; the table says so through the load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LIMITS_MIN = {"default chcr run": 8.0, "shipped pretrain": 90.0, "benchmarks/synthetic.yaml": 90.0}
CARD = Path(__file__).resolve().parents[1] / "reidkit" / "models" / "pretrained" / "synthetic-pretrained.json"


def run_default(output: Path) -> None:
    """Run ``reidkit run --method chcr --output OUTPUT`` as a new user would and record the conditions."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(["reidkit", "run", "--method", "chcr", "--output", str(output)], check=True)
    wall = time.perf_counter() - start
    record = {"command": "reidkit run --method chcr", "wall_s": wall, "load_1min_before": load_before,
              "load_1min_after": os.getloadavg()[0], "cpus": os.cpu_count()}
    (output / "budget.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


def _threads(run_dir: Path) -> str:
    env = run_dir / "env.json"
    return str(json.loads(env.read_text()).get("cpu_threads", "?")) if env.exists() else "?"


def bench_wall(bench: Path) -> tuple[float, int, set[str]]:
    """Sum of ``wall_time_s`` over the finished runs under ``bench``, their count, and their torch threads."""
    total, count, threads = 0.0, 0, set()
    for metrics in sorted(bench.rglob("metrics.json")):
        total += float(json.loads(metrics.read_text())["wall_time_s"])
        count += 1
        threads.add(_threads(metrics.parent))
    return total, count, threads


def bench_elapsed(bench: Path) -> float | None:
    """Seconds from the first run's start to the last run's end in ``bench/suite.json`` (what a user waits,
    whatever ``--jobs``), over the runs that have both times (an ``--only`` selection, say); None when the
    folder has none, e.g. runs copied in or made by hand."""
    from datetime import datetime

    index = bench / "suite.json"
    if not index.is_file():
        return None
    runs = [r for r in json.loads(index.read_text())["runs"] if "started" in r and "finished" in r]
    if not runs:
        return None
    start = min(datetime.fromisoformat(r["started"]) for r in runs)
    end = max(datetime.fromisoformat(r["finished"]) for r in runs)
    return (end - start).total_seconds()


def table(run: Path | None, bench: Path | None, card: Path) -> str:
    rows = ["| budget | measured (min) | limit (min) | share of the limit | conditions |",
            "|---|---:|---:|---:|---|"]

    def row(name: str, seconds: float, conditions: str) -> None:
        limit = LIMITS_MIN[name]
        rows.append(f"| {name} | {seconds / 60:.1f} | {limit:.0f} | {seconds / 60 / limit:.2f} | {conditions} |")

    if run is not None:
        record = json.loads((run / "budget.json").read_text())
        row("default chcr run", record["wall_s"],
            f"torch threads {_threads(run)}, load before {record['load_1min_before']:.1f} on "
            f"{record['cpus']} CPUs")
    if card.exists():
        info = json.loads(card.read_text())
        row("shipped pretrain", float(info["wall_time_s"]),
            f"{info['steps']} steps x {info['batch_size']}, device {info['device']}")
    if bench is not None:
        total, count, threads = bench_wall(bench)
        row("benchmarks/synthetic.yaml", total, f"sum of {count} runs' wall times, torch threads "
                                                f"{', '.join(sorted(threads))}")
        elapsed = bench_elapsed(bench)
        if elapsed is not None:
            rows.append(f"| benchmarks/synthetic.yaml, elapsed | {elapsed / 60:.1f} | 90 | {elapsed / 60 / 90:.2f} | "
                        "first start to last end (suite.json), runs side by side with --jobs |")
    return "\n".join(rows)


def estimate(samples: list[Path], suite_file: Path, jobs: int) -> str:
    """A markdown table: per method and preset, the sampled runs' mean wall time and the suite's job count,
    then the suite's estimated sum and elapsed time (sum / ``jobs``) against its 90-minute limit."""
    from reidkit.bench.results import collect_runs
    from reidkit.bench.suite import load_suite
    from reidkit.engine.run import resolve_run_config

    walls: dict[tuple[str, str], list[float]] = {}
    cpus: set[str] = set()
    for folder in samples:
        for r in collect_runs(folder)[1]:
            if r.status != "done":
                continue
            walls.setdefault((r.method, str(r.metrics.get("preset"))), []).append(float(r.metrics["wall_time_s"]))
            cpus.add(str((r.env or {}).get("cpu") or "CPU not recorded"))
    counts: dict[tuple[str, str], int] = {}
    for job in load_suite(suite_file).jobs:
        cfg = resolve_run_config(job.method, config_file=job.config_file, overrides=job.all_overrides(Path("x")))
        key = (job.method, str(getattr(cfg.dataset_args, "preset", None)))
        counts[key] = counts.get(key, 0) + 1
    missing = sorted(set(counts) - set(walls))
    if missing:
        raise SystemExit(f"no sample run of {', '.join(f'{m} on {p}' for m, p in missing)}")
    rows = ["| method | preset | sample runs | mean wall (min) | suite jobs | sum (min) |",
            "|---|---|---:|---:|---:|---:|"]
    total = 0.0
    for (method, preset), n in sorted(counts.items()):
        mean = sum(walls[method, preset]) / len(walls[method, preset])
        total += mean * n
        rows.append(f"| {method} | {preset} | {len(walls[method, preset])} | {mean / 60:.1f} | {n} | "
                    f"{mean * n / 60:.1f} |")
    elapsed = total / jobs
    rows += ["", f"{suite_file}: sum {total / 60:.1f} min; with --jobs {jobs}, about {elapsed / 60:.1f} min elapsed "
                 f"({elapsed / 60 / LIMITS_MIN['benchmarks/synthetic.yaml']:.2f} of the 90-minute limit). "
                 f"Sample CPU: {', '.join(sorted(cpus)) or 'not recorded'}."]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run-default", help="time the default `reidkit run --method chcr`")
    p_run.add_argument("--output", type=Path, required=True)
    p_table = sub.add_parser("table", help="the budgets table (markdown)")
    p_table.add_argument("--run", type=Path, help="folder written by run-default")
    p_table.add_argument("--bench", type=Path, help="output folder of `reidkit bench benchmarks/synthetic.yaml`")
    p_table.add_argument("--card", type=Path, default=CARD, help="the weights card (default: the shipped one)")
    p_est = sub.add_parser("estimate", help="the suite's time from sample runs (see the module docstring)")
    p_est.add_argument("samples", type=Path, nargs="+", help="folders of finished runs")
    p_est.add_argument("--suite", type=Path, default=Path(__file__).resolve().parent / "synthetic.yaml")
    p_est.add_argument("--jobs", type=int, default=2, help="runs side by side (reidkit bench --jobs)")
    args = parser.parse_args(argv)
    if args.command == "run-default":
        run_default(args.output)
    elif args.command == "estimate":
        print(estimate(args.samples, args.suite, args.jobs))
    else:
        print(table(args.run, args.bench, args.card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
