"""The ``bench`` and ``report`` commands and the ``eval --visualize`` option, for ``reidkit.cli`` to wire in.

``add_parsers(subparsers)`` adds ``bench`` and ``report``; ``add_eval_visualize_args(parser)`` adds
``--visualize N``, ``--output DIR`` (and friends) to ``eval``, whose handler calls
``visualize_checkpoint(args)`` when ``args.visualize`` is set. Every handler returns an exit code.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from reidkit.cli import EXIT_INTERRUPTED
from reidkit.config import ConfigError

DEFAULT_REFERENCE = Path("benchmarks") / "reference.yaml"


def _console():
    from rich.console import Console

    return Console(highlight=False)


def add_parsers(subparsers) -> None:
    """Add ``bench`` and ``report`` to the CLI's subparsers."""
    p = subparsers.add_parser("bench", help="run a benchmark suite (methods x datasets x seeds)",
                              description="Run every run of SUITE not yet finished in --output; a failed run "
                                          "is recorded (failed.json) and the suite goes on. Run the same "
                                          "command again to continue an interrupted suite. Exit status 1 "
                                          "when a run failed, 130 when the suite stopped before its end "
                                          "(SIGTERM or Ctrl-C: runs left pending).")
    p.add_argument("suite", help="suite file (benchmarks/*.yaml)")
    p.add_argument("--output", required=True, help="benchmark folder (one run directory per run)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override a config key in every run (repeatable), e.g. data.root=/data/SYSU-MM01")
    p.add_argument("--only", action="append", metavar="TEXT", default=[],
                   help="run only the runs whose id contains TEXT (repeatable), e.g. 'chcr/' or 'seed0'")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run N runs at once, each in its own process with 1/N of the CPU cores (and its own "
                        "GPU with --device cuda when there are N); on a small CPU, 2 runs at 1 thread each "
                        "finish sooner than 2 runs one after the other (default 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs and check that every config resolves; run nothing")
    p.set_defaults(func=cmd_bench)

    p = subparsers.add_parser("report", help="side-by-side report of a benchmark folder; the results page",
                              description="Tables of mean ± std over seeds per method and protocol; HTML "
                                          "adds plots. Published numbers, if a reference file is found, are "
                                          "shown in a separate block. --collect writes a benchmark's "
                                          "small per-run result files (to commit); --results makes the "
                                          "results page from them.")
    p.add_argument("dir", nargs="?", help="benchmark folder written by 'reidkit bench'")
    p.add_argument("--collect", metavar="DIR",
                   help="write the result file of every finished run of DIR (a benchmark folder, a folder "
                        "inside one, or a run directory) into --into; idempotent")
    p.add_argument("--into", metavar="FOLDER",
                   help="--collect: where the result files go (default benchmarks/results/<suite>)")
    p.add_argument("--results", metavar="FOLDER",
                   help="the results page from the result files in FOLDER (benchmarks/results; rows chosen "
                        "by FOLDER/page.yaml), e.g. --results benchmarks/results "
                        "--output benchmarks/RESULTS.md")
    p.add_argument("--format", choices=("markdown", "html"), default="markdown")
    p.add_argument("--output", help="write the report here (default: print it)")
    p.add_argument("--plots", metavar="DIR",
                   help="markdown: also write the plots as PNG files here and link them")
    p.add_argument("--reference", metavar="FILE",
                   help=f"published numbers to show apart (default: {DEFAULT_REFERENCE} if it exists, "
                        "restricted to the datasets measured)")
    p.add_argument("--no-reference", action="store_true", help="leave the published numbers out")
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="which scores to tabulate: the test split (default) or the validation split of runs "
                        "trained with data.val_ids (for tuning)")
    p.set_defaults(func=cmd_report)


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.table import Table

    from reidkit.bench.runner import check_suite, run_suite
    from reidkit.bench.suite import load_suite

    suite = load_suite(args.suite, extra=args.set)
    console = _console()
    if args.dry_run:
        table = Table(title=f"suite {suite.name}: {len(suite.jobs)} runs")
        table.add_column("run", no_wrap=True)
        table.add_column("config file")
        table.add_column("check")
        problems = 0
        for job, error in check_suite(suite):
            if args.only and not any(s in job.id for s in args.only):
                continue
            problems += error is not None
            table.add_row(job.id, job.config_file or "-", error or "ok", style="red" if error else None)
        console.print(table)
        return 1 if problems else 0
    entries = run_suite(suite, args.output, device=args.device, console=console, only=args.only,
                        jobs=args.jobs)
    counts = {s: sum(e["status"] == s for e in entries) for s in ("done", "failed", "pending", "busy")}
    console.print("suite {}: {}".format(suite.name, ", ".join(f"{n} {s}" for s, n in counts.items() if n)))
    for e in entries:
        if e["status"] == "failed":
            console.print(f"[red]failed[/red] {e['id']}: {e.get('error', '')}")
    console.print(f"report: reidkit report {args.output}")
    if counts["failed"]:
        return 1
    if counts["pending"]:  # only a stop request (SIGTERM, Ctrl-C) leaves a selected run pending
        console.print(f"stopped before the end: {counts['pending']} pending; run the same command again to "
                      "continue")
        return EXIT_INTERRUPTED
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from reidkit.bench.report import write_report

    chosen = [name for name, value in (("DIR", args.dir), ("--collect", args.collect),
                                       ("--results", args.results)) if value]
    if len(chosen) != 1:
        raise ConfigError("report: give one of DIR (a benchmark folder), --collect DIR or --results FOLDER"
                          + (f", not {' and '.join(chosen)}" if chosen else ""))
    if args.into and not args.collect:
        raise ConfigError("--into is for --collect")
    if args.collect:
        return _collect(args)
    if args.results:
        return _results_page(args)
    if args.plots and args.format != "markdown":
        raise ConfigError("--plots is for --format markdown; HTML embeds its plots")
    reference, required = None, False
    if not args.no_reference:
        if args.reference:
            reference, required = args.reference, True
        elif DEFAULT_REFERENCE.is_file():
            reference = DEFAULT_REFERENCE
    text = write_report(args.dir, fmt=args.format, output=args.output, reference=reference,
                        reference_required=required, plots_dir=args.plots, split=args.split)
    if args.output:
        _console().print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _collect(args: argparse.Namespace) -> int:
    from reidkit.bench.results_collect import collect

    print(collect(args.collect, args.into).summary())
    return 0


def _results_page(args: argparse.Namespace) -> int:
    from reidkit.bench.results_page import build_page, render_page

    if args.format != "markdown" or args.plots or args.split != "test":
        raise ConfigError("--results writes a Markdown page of test scores: "
                          "no --format html, --plots or --split")
    page = build_page(args.results, reference=args.reference, use_reference=not args.no_reference)
    output = ["--output", Path(args.output).as_posix()] if args.output else []
    command = " ".join(["reidkit report --results", Path(args.results).as_posix(), *output])
    text = render_page(page, command=command, base=Path(args.output).parent if args.output else None)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        _console().print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def add_eval_visualize_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--visualize N`` and its options to the ``eval`` parser."""
    parser.add_argument("--visualize", type=int, metavar="N",
                        help="write ranked lists of N queries and a 2-D embedding map to --output")
    parser.add_argument("--output", help="folder for the --visualize pictures")
    parser.add_argument("--embedding", choices=("tsne", "pca"), default="tsne", help="2-D map (default tsne)")
    parser.add_argument("--protocol", action="append", help="only this protocol (repeatable; default all)")
    parser.add_argument("--top", type=int, default=10, help="gallery images per ranked list (default 10)")


def visualize_checkpoint(args: argparse.Namespace) -> int:
    """``reidkit eval --checkpoint F --visualize N --output DIR``."""
    from reidkit.bench.visualize import visualize_checkpoint as visualize

    if args.visualize is None or args.visualize < 1:
        raise ConfigError("--visualize N needs N >= 1 queries")
    if not args.output:
        raise ConfigError("--visualize needs --output DIR for the pictures")
    if args.top < 1:
        raise ConfigError("--top must be >= 1")
    doc = visualize(args.checkpoint, args.output, queries=args.visualize, overrides=args.set or [],
                    device=args.device, protocols=args.protocol or (), embedding=args.embedding, top=args.top)
    console = _console()
    for name, part in doc["protocols"].items():
        console.print(f"{name}: {', '.join(part['files'])}")
    console.print(f"pictures and ranked.json in {args.output}")
    return 0
