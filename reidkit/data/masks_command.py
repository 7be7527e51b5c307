"""``reidkit data masks DATASET [ROOT] --output DIR --source S``: the command line of
:func:`reidkit.data.masks.write_masks` for a dataset's training images."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reidkit.cli import image_size
from reidkit.data.masks_sources import SOURCES

EXAMPLES = """examples:
  reidkit data masks sysu_mm01 /data/SYSU-MM01 --modality visible --source mediapipe --output /data/masks/sysu
  reidkit data masks sysu_mm01 /data/SYSU-MM01 --modality infrared --source silhouette --output /data/masks/sysu
  reidkit data masks regdb /data/RegDB --set trial=3 --source silhouette --output /data/masks/regdb
  reidkit data masks llcm /data/LLCM --source parsing --checkpoint schp-lip.pt --output /data/masks/llcm
  reidkit data masks synthetic --set preset=standard --source silhouette --output masks/standard
(--set takes the dataset's own options, dataset_args, and the data section's keys, e.g. mask_root)
then: reidkit run --method imsl --config configs/datasets/sysu_mm01.yaml --set data.root=/data/SYSU-MM01 \\
      --set data.mask_root=/data/masks/sysu
An interrupted run continues where it stopped when run again with the same arguments.
"""


def add_parser(data_sub) -> None:
    """Register ``masks`` under the ``reidkit data`` sub-commands."""
    p = data_sub.add_parser("masks", help="shape masks for a dataset's training images (data.mask_root)",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="DATASET", help="registered dataset name (reidkit list datasets)")
    p.add_argument("root", metavar="ROOT", nargs="?", help="the dataset folder (synthetic: optional)")
    p.add_argument("--output", required=True, help="mask folder to write (then data.mask_root=DIR)")
    p.add_argument("--source", required=True, choices=SOURCES,
                   help="silhouette: built-in estimate, no model; parsing: a local parsing model (.pt2 or TorchScript); "
                        "mediapipe: mediapipe 0.10.21's bundled selfie segmenter (pip install 'reidkit[masks]')")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a data setting, e.g. --set trial=3 (RegDB split) or --set preset=standard (synthetic)")
    p.add_argument("--modality", action="append",
                   help="only this modality's images (repeatable); another source may fill the others")
    p.add_argument("--overwrite", action="store_true", help="recompute masks already in --output")
    parsing = p.add_argument_group("--source parsing")
    parsing.add_argument("--checkpoint", help="torch.export .pt2 or TorchScript file: [B, 3, H, W] RGB in [0, 1] -> [B, C, h, w] logits")
    parsing.add_argument("--background-class", type=int, default=0, help="the background label (default 0)")
    parsing.add_argument("--person-class", type=int, action="append", default=[],
                         help="count only these labels as person (repeatable; instead of --background-class)")
    parsing.add_argument("--input-size", type=image_size, default=(512, 256), metavar="HxW",
                         help="the model's input size (default 512x256)")
    parsing.add_argument("--batch-size", type=int, default=8)
    parsing.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    mp = p.add_argument_group("--source mediapipe")
    mp.add_argument("--threshold", type=float, default=0.5, help="least confidence counted as person (0.5)")
    p.set_defaults(func=cmd_data_masks)


def data_settings(pairs: list[str] | None) -> dict[str, Any]:
    """``--set`` strings of the data commands as one mapping: ``data.*`` and ``dataset_args.*`` keys nested,
    bare keys kept at the top (``reidkit.dataset_args.route_settings`` places them)."""
    from reidkit.config import deep_merge, parse_override

    settings: dict = {}
    for text in pairs or []:
        settings = deep_merge(settings, parse_override(text))
    return settings


def cmd_data_masks(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reidkit.data.masks import MaskError, check_manifest, source_entry, write_masks
    from reidkit.data.masks_sources import make_source
    from reidkit.dataset_args import load_from_settings

    source = make_source(args.source, checkpoint=args.checkpoint, background_class=args.background_class,
                         person_classes=args.person_class, input_size=args.input_size,
                         batch_size=args.batch_size, device=args.device, threshold=args.threshold)
    settings = data_settings(args.set)
    settings.pop("mask_root", None)  # the masks are computed from the images, never read
    settings["data"] = {**settings.get("data", {}), "mask_root": None}
    if args.root:
        settings["data"]["root"] = args.root
    dataset = load_from_settings(args.name, settings)
    samples = dataset.train
    if args.modality:
        unknown = sorted(set(args.modality) - set(dataset.modalities))
        if unknown:
            raise MaskError(f"{args.name} has no modality {', '.join(unknown)}; it has {', '.join(dataset.modalities)}")
        samples = [s for s in samples if s.modality in set(args.modality)]
    record = {"dataset": args.name, "root": str(dataset.root), "data": data_settings(args.set)}
    check_manifest(Path(args.output).expanduser(), source_entry(source), {s.modality for s in samples},
                   overwrite=args.overwrite)
    console = Console(stderr=True, highlight=False)
    columns = (TextColumn(f"masks ({args.source})"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("masks", total=len(samples))
        summary = write_masks(samples, dataset.root, args.output, source, record=record,
                              overwrite=args.overwrite, progress=lambda n: bar.advance(task, n))
    Console(highlight=False).print(
        f"{summary.written} masks written, {summary.skipped} already there, {summary.total} training images: "
        f"{summary.output}\nuse them with --set data.mask_root={summary.output}")
    return 0
