"""``reidkit pretrain``: the command line of :func:`reidkit.pretrain.pretrain`."""
from __future__ import annotations

import argparse
import dataclasses

from reidkit.cli import image_size
from reidkit.pretrain.augment import AugmentConfig
from reidkit.pretrain.config import AMP_MODES, MODES, PretrainConfig, PretrainError
from reidkit.pretrain.recipes import RECIPES

#: the fields of AugmentConfig that ``--augment KEY=VALUE`` may set
AUGMENT_FIELDS = tuple(f.name for f in dataclasses.fields(AugmentConfig))

EXAMPLES = """examples:
  reidkit pretrain --output runs/ssl/resnet-mini.pth                          # the synthetic pretraining world
  reidkit pretrain --dataset sysu_mm01 --root /data/SYSU-MM01 --backbone resnet50 --height 288 --width 144 \\
      --output ~/weights/sysu-ssl.pth                                          # unlabeled images of a dataset
  reidkit pretrain --folder /data/my-cameras --output ~/weights/mine.pth      # any folder of images
  reidkit pretrain --mode supervised --dataset sysu_mm01 --root /data/SYSU-MM01 --output src.pth   # transfer
then: reidkit run --method chcr --set model.weights=runs/ssl/resnet-mini.pth
"""


def add_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="pretrain a backbone on unlabeled (or labelled source) images",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = PretrainConfig(output="x.pth")
    p.add_argument("--output", required=True, help="weights file to write (X.pth; the card goes beside it as X.json), or a "
                        "folder (then backbone.pth and backbone.json in it)")
    p.add_argument("--mode", choices=MODES, default=defaults.mode)
    p.add_argument("--recipe", choices=RECIPES, default=defaults.recipe, help="self-supervised objective")
    corpus = p.add_argument_group("corpus (one of --dataset, --folder)")
    corpus.add_argument("--dataset", help="registered dataset whose training split is used "
                                          "(default: synthetic, the pretraining world)")
    corpus.add_argument("--root", help="the dataset's folder")
    corpus.add_argument("--folder", help="a plain folder of images (sub-folders name modalities)")
    corpus.add_argument("--preset", default=defaults.preset, help="synthetic preset (without --root)")
    corpus.add_argument("--world-seed", type=int, help="seed of the synthetic world (default: the preset's "
                                                       "own, 1000 for the pretrain-world presets, else 0)")
    corpus.add_argument("--modality", action="append", help="keep only this modality (repeatable)")
    model = p.add_argument_group("model and optimisation")
    model.add_argument("--backbone", default=defaults.backbone)
    model.add_argument("--height", type=int, default=defaults.height)
    model.add_argument("--width", type=int, default=defaults.width)
    model.add_argument("--steps", type=int, default=defaults.steps)
    model.add_argument("--low-res", metavar="HxW", type=image_size,
                       help="make the views of the first --low-res-steps steps at this size (cheaper steps; "
                            "progressive resizing), e.g. 80x40")
    model.add_argument("--low-res-steps", type=int, default=defaults.low_res_steps,
                       help="how many of --steps use --low-res views (the rest use --height x --width)")
    model.add_argument("--local-crops", type=int, default=defaults.local_crops,
                       help="multi-crop: this many small views of each image besides the two full ones "
                            "(--recipe simclr; default 0 = off)")
    model.add_argument("--local-size", metavar="HxW", type=image_size, default=defaults.local_size,
                       help="size of the small views (default {}x{})".format(*defaults.local_size))
    model.add_argument("--batch-size", type=int, default=defaults.batch_size)
    model.add_argument("--lr", type=float, default=defaults.lr)
    model.add_argument("--warmup", type=int, default=defaults.warmup, help="linear warmup steps")
    model.add_argument("--temperature", type=float, default=defaults.temperature)
    model.add_argument("--modality-align", type=float, default=defaults.modality_align,
                       help="weight of the loss that pulls the modalities' mean features together "
                            "(self-supervised; reads which camera kind took each image, never links images)")
    model.add_argument("--seed", type=int, default=defaults.seed)
    model.add_argument("--workers", type=int, default=defaults.workers)
    model.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    model.add_argument("--augment", action="append", metavar="KEY=VALUE",
                       help="change one field of the views' augmentations (repeatable), e.g. lut_p=0.3 or "
                            "crop_area=0.2,1.0; fields: " + ", ".join(AUGMENT_FIELDS))
    run = p.add_argument_group("running")
    run.add_argument("--on-bad-image", choices=("error", "skip"), default=defaults.on_bad_image)
    run.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT's .ckpt")
    run.add_argument("--force", action="store_true", help="overwrite an existing OUTPUT")
    run.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    run.add_argument("--amp", choices=AMP_MODES, default=defaults.amp,
                     help="bfloat16 autocast: auto = on CUDA and on CPUs with native bfloat16 (AVX512-BF16/AMX); "
                          "bf16 = on any device; off = float32")
    run.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=defaults.channels_last,
                     help="channels-last memory format (faster; default on)")
    p.set_defaults(func=cmd_pretrain)


def augment_from_args(pairs: list[str] | None) -> AugmentConfig:
    """``["lut_p=0.3", "crop_area=0.2,1.0"]`` -> the default :class:`AugmentConfig` with those fields changed."""
    defaults = AugmentConfig()
    changes = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in AUGMENT_FIELDS:
            raise PretrainError(f"--augment wants KEY=VALUE with KEY one of {', '.join(AUGMENT_FIELDS)}; got {pair!r}")
        old = getattr(defaults, key)
        try:
            if isinstance(old, tuple):
                new = tuple(type(o)(v) for o, v in zip(old, value.split(","), strict=True))
            else:
                new = type(old)(value)
        except ValueError:
            raise PretrainError(f"--augment {key}: {value!r} is not {'two numbers a,b' if isinstance(old, tuple) else type(old).__name__}") from None
        changes[key] = new
    return dataclasses.replace(defaults, **changes)


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    folder = args.folder
    dataset = None if folder else (args.dataset or "synthetic")
    world_seed = args.world_seed
    return PretrainConfig(
        output=args.output, dataset=dataset, root=args.root, folder=folder, preset=args.preset,
        world_seed=world_seed, modalities=tuple(args.modality or ()), mode=args.mode, recipe=args.recipe,
        backbone=args.backbone, height=args.height, width=args.width, steps=args.steps,
        low_res=getattr(args, "low_res", None), low_res_steps=getattr(args, "low_res_steps", 0),
        local_crops=getattr(args, "local_crops", 0),
        local_size=tuple(getattr(args, "local_size", PretrainConfig.local_size)),
        batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, temperature=args.temperature,
        modality_align=args.modality_align, seed=args.seed,
        workers=args.workers, on_bad_image=args.on_bad_image, checkpoint_every=args.checkpoint_every,
        amp=getattr(args, "amp", "auto"), channels_last=getattr(args, "channels_last", True),
        augment=augment_from_args(getattr(args, "augment", None)))


def cmd_pretrain(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from reidkit import distributed
    from reidkit.pretrain.train import card_path, pretrain

    if args.dataset and args.folder:
        raise PretrainError("give either --dataset or --folder, not both")
    cfg = config_from_args(args)
    if distributed.env_rank() != 0:
        try:
            pretrain(cfg, device=args.device, resume=args.resume, force=args.force)
        finally:
            distributed.shutdown()
        return 0
    console = Console(highlight=False)
    bar = Progress(TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"),
                   TimeRemainingColumn(), console=console)
    task = bar.add_task("steps", total=cfg.steps, loss="")

    def progress(step: int, total: int, losses: dict[str, float]) -> None:
        bar.update(task, completed=step, loss=" ".join(f"{k} {v:.3f}" for k, v in losses.items()))

    with bar:
        try:
            card = pretrain(cfg, device=args.device, resume=args.resume, force=args.force, progress=progress)
        finally:
            distributed.shutdown()
    corpus = card["corpus"]
    console.print(f"wrote {cfg.weights_path} and {card_path(cfg.weights_path)}: {card['backbone']}, {card['mode']} "
                  f"({card['recipe']}), {card['steps']} steps on {corpus['images']} images of "
                  f"{corpus['dataset']} ({', '.join(corpus['modalities'])}), {card['wall_time_s']:.0f} s")
    console.print(f"use it with: --set model.weights={cfg.weights_path}")
    return 0


__all__ = ["add_parser", "cmd_pretrain", "config_from_args"]
