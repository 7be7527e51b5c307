"""``reidkit`` command line. The only module that prints or configures logging output.

A user's mistake (bad path, key, name or file) prints one ``error:`` line and exits with status 2,
without a traceback; ``--debug`` shows it.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

EXIT_USER_ERROR = 2
EXIT_RUNTIME_ERROR = 1
EXIT_INTERRUPTED = 130


def image_size(text: str) -> tuple[int, int]:
    """An argparse type: ``"80x40"`` -> ``(80, 40)`` (height, width), both positive."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, e.g. 512x256, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return h, w


def _user_errors() -> tuple[type[BaseException], ...]:
    from reidkit.config import ConfigError
    from reidkit.data.datasets.base import DatasetError
    from reidkit.engine.checkpoint import CheckpointError
    from reidkit.engine.run import RunError
    from reidkit.pretrain.config import PretrainError
    from reidkit.registry import RegistryError

    errors: list[type[BaseException]] = [ConfigError, DatasetError, CheckpointError, RunError, RegistryError,
                                         PretrainError,
                                         FileNotFoundError, NotADirectoryError, PermissionError]
    for module, name in (("reidkit.data.image_dataset", "BadImageError"),
                         ("reidkit.models.backbones", "WeightsError")):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):  # pragma: no cover - optional pieces
            pass
    return tuple(errors)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _setup_logging(verbose: int) -> None:
    from rich.logging import RichHandler

    logger = logging.getLogger("reidkit")
    handler = RichHandler(console=_console(stderr=True), show_path=False, markup=False)
    handler.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)  # handlers filter: the console by -v, a run's log.txt at INFO
    logger.propagate = False


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}" if isinstance(x, (int, float)) else "-"


def results_table(results: dict[str, dict[str, Any]], title: str = "results (last epoch)"):
    from rich.table import Table

    table = Table(title=title, caption="scores in %")
    table.add_column("protocol", no_wrap=True)
    for col in ("R1", "R5", "R10", "R20", "mAP", "mINP"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("trials", justify="right")
    for name, r in results.items():
        table.add_row(name, *(_pct(r.get(k)) for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")),
                      str(r.get("trials", "")))
    return table


# --------------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------------
def _method_from_args(args: argparse.Namespace) -> str:
    if args.method:
        return args.method
    if args.config:
        from reidkit.config_files import read_config

        method = read_config(args.config).get("method")  # the file's or one of its _base_ files'
        if method:
            return str(method)
    from reidkit.config import ConfigError

    raise ConfigError("no method given: pass --method NAME (reidkit list methods shows what is installed)")


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from reidkit import distributed
    from reidkit.engine.callbacks import RichProgress
    from reidkit.engine.run import default_output, resolve_run_config, run

    overrides = list(args.set or [])
    if args.output:
        overrides.append(f"output={json.dumps(args.output)}")
    cfg = resolve_run_config(_method_from_args(args), config_file=args.config, overrides=overrides)
    if not cfg.output:
        cfg = dataclasses.replace(cfg, output=str(default_output(cfg)))
    if distributed.env_rank() != 0:  # torchrun: rank 0 reports, the other ranks train quietly
        try:
            run(cfg, device=args.device, resume=args.resume)
        finally:
            distributed.shutdown()
        return 0
    console = _console()
    progress = RichProgress(console)
    try:
        doc = run(cfg, device=args.device, resume=args.resume, callbacks=[progress])
    finally:
        progress.stop()
        distributed.shutdown()
    if doc.get("validation"):
        console.print(results_table(doc["validation"], title="validation split (last epoch)"))
    if doc.get("results"):
        console.print(results_table(doc["results"]))
    if doc.get("stopped_early"):
        console.print(f"stopped early; continue with --resume --output {cfg.output}")
    console.print(f"run directory: {cfg.output} (wall time {doc['wall_time_s']:.0f} s)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from reidkit.engine.run import evaluate_checkpoint

    if args.visualize is not None:
        from reidkit.bench.commands import visualize_checkpoint

        return visualize_checkpoint(args)
    doc = evaluate_checkpoint(args.checkpoint, overrides=args.set or [], device=args.device)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _console().print(results_table(doc["results"], title=f"{doc['method']} epoch {doc['epoch']}"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from reidkit.engine.export import export_checkpoint

    paths = export_checkpoint(args.checkpoint, args.output, args.format, modalities=args.modality)
    console = _console()
    for path in paths:
        console.print(f"wrote {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from reidkit.registry import REGISTRIES

    rows = REGISTRIES[args.what].status()
    table = Table(title=f"installed {args.what}")
    for col in ("name", "distribution", "target", "status"):
        table.add_column(col)
    for r in rows:
        style = None if r["status"] == "ok" else "red"
        table.add_row(r["name"], r["distribution"], r["target"], r["status"], style=style)
    console = _console()
    console.print(table if rows else f"no {args.what} installed")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from reidkit.config import dump
    from reidkit.engine.run import resolve_run_config

    cfg = resolve_run_config(_method_from_args(args), config_file=args.config, overrides=args.set or [])
    sys.stdout.write(dump(cfg, comments=args.comments))
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from reidkit.data import synthetic

    root = synthetic.generate(args.preset, args.output, seed=args.seed, progress=True)
    console = _console()
    console.print(f"wrote synthetic preset '{args.preset}' (seed {args.seed}) to {root}")
    if args.preview:
        console.print(f"preview: {synthetic.preview(root, args.preview)}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from reidkit.data.check import check_dataset, render_check
    from reidkit.data.masks_command import data_settings

    report, warnings = check_dataset(args.name, args.root, **data_settings(args.set))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    console = _console()
    rendered = render_check(report, warnings)
    for part in rendered if isinstance(rendered, (list, tuple)) else [rendered]:
        console.print(part)
    return 0


# --------------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from reidkit.bench import commands as bench_commands

    parser = argparse.ArgumentParser(prog="reidkit", description="Unsupervised cross-modality person re-ID.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v, -vv)")
    sub = parser.add_subparsers(dest="command", required=True)

    def config_args(p: argparse.ArgumentParser, method_required: bool = False) -> None:
        p.add_argument("--method", required=method_required, help="registered method name")
        p.add_argument("--config", help="YAML config file (it may build on others with _base_: docs/configs.md)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")

    p = sub.add_parser("run", help="train and evaluate (synthetic dataset unless one is configured)")
    config_args(p)
    p.add_argument("--output", help="run directory (default runs/<method>-<dataset>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/checkpoints/last.pt")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="evaluate a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    bench_commands.add_eval_visualize_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="export a checkpoint's embedding model (one file per modality)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    p.add_argument("--output", required=True, help="file path; with several modalities, -<modality> is added")
    p.add_argument("--modality", action="append", help="export only this modality (repeatable)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("list", help="installed methods, datasets, backbones, exclusion rules or samplers")
    p.add_argument("what", choices=("methods", "datasets", "backbones", "exclusions", "samplers"))
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("config", help="print the resolved default config of a method as YAML")
    config_args(p)
    p.add_argument("--comments", action="store_true",
                   help="annotate every key with its help text, choices and bounds")
    p.set_defaults(func=cmd_config)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("synth", help="write the synthetic dataset")
    p.add_argument("--preset", default="small")
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preview", help="also write a PNG grid of identities across modalities")
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("check", help="validate a dataset folder")
    p.add_argument("name")
    p.add_argument("root")
    p.add_argument("--json", action="store_true")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a dataset option (dataset_args) or data setting, e.g. --set trial=3 (RegDB split) "
                        "or --set gallery_sampler=seeded")
    p.set_defaults(func=cmd_data_check)
    from reidkit.data import masks_command

    masks_command.add_parser(data)
    bench_commands.add_parsers(sub)
    from reidkit.pretrain import command as pretrain_command

    pretrain_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if args.debug:
            raise
        if isinstance(e, _user_errors()):
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"error: {msg}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (--debug shows the traceback)",
              file=sys.stderr)
        return EXIT_RUNTIME_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
