"""Where the time of one step of the shipped pretraining goes, on this machine, and what 8,000 steps cost.

    python benchmarks/pretrain_step.py [--steps 15] [--compile] [--view-size 96x48 ...] [--local-crops 4 ...]
        [--json FILE]

Builds the shipped recipe as ``reidkit pretrain`` does (its defaults: SimCLR, resnet-mini, 128 images of
128 x 64 per step, two views each, channels-last, ``--amp auto``'s precision for this CPU) and times, on one
fixed batch, (a) the two augmented views (``reidkit.pretrain.augment``) and (b) the whole step (views,
forward, backward, AdamW), eager and, with ``--compile``, with the recipe module under ``torch.compile``;
with ``--view-size HxW`` (repeatable), also eager with views made at that size (``--low-res``); with
``--local-crops M`` (repeatable), also eager with M small views per image at ``reidkit pretrain``'s
``--local-size`` default (multi-crop).
Medians after 3 warm-up steps. Data loading is left out (``reidkit pretrain`` overlaps it in worker
processes). The last column projects the 8,000 steps of the shipped command (benchmarks/README.md, Budgets).
Run it on an idle machine: two jobs on 2 cores halve each other's speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from reidkit.cli import image_size


def _median_after_warmup(times: list[float]) -> float:
    return statistics.median(times[3:] if len(times) > 4 else times)


def measure(steps: int, compile_model: bool, size: tuple[int, int] | None = None,
            local_crops: int = 0) -> dict[str, float]:
    from reidkit.pretrain import train as T
    from reidkit.pretrain.config import PretrainConfig
    from reidkit.pretrain.corpus import CorpusImages

    cfg = PretrainConfig(output="unused.pth", local_crops=local_crops)
    dev = torch.device("cpu")
    corpus = T.build_corpus(cfg)
    torch.manual_seed(0)
    model = T.build_model(cfg, corpus.num_ids, dev)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    forward = torch.compile(model) if compile_model else model
    images = CorpusImages(corpus.samples, (cfg.height, cfg.width))
    batch, labels, modalities = T._collate([images[i] for i in range(cfg.batch_size)])
    batch = batch.float().div_(255)
    prec = T.precision(cfg.amp, dev)
    amp = T._autocast(prec, dev)
    views_s, step_s = [], []
    for step in range(steps):
        t0 = time.perf_counter()
        views = T.make_views(batch, cfg, torch.Generator().manual_seed(step), size)
        t1 = time.perf_counter()
        with amp:
            losses = forward(views, labels, modalities)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        views_s.append(t1 - t0)
        step_s.append(time.perf_counter() - t0)
    return {"step_s": _median_after_warmup(step_s), "views_s": _median_after_warmup(views_s),
            "precision": prec, "steps_shipped": cfg.steps, "batch_size": cfg.batch_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="timed steps per variant (3 are warm-up)")
    parser.add_argument("--compile", action="store_true", help="also time the step under torch.compile")
    parser.add_argument("--view-size", action="append", default=[], metavar="HxW", type=image_size,
                        help="also time eager steps with views of this size (repeatable)")
    parser.add_argument("--local-crops", action="append", default=[], type=int, metavar="M",
                        help="also time eager steps with M small views per image (repeatable)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)
    rows = {"eager": measure(args.steps, False)}
    if args.compile:
        rows["torch.compile"] = measure(args.steps, True)
    for h, w in args.view_size:
        rows[f"eager, views {h}x{w}"] = measure(args.steps, False, (h, w))
    from reidkit.pretrain.config import PretrainConfig

    h, w = PretrainConfig.local_size
    for m in args.local_crops:
        rows[f"eager, + {m} views of {h}x{w}"] = measure(args.steps, False, local_crops=m)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}")
    print("| step | precision | s / step | of which the views | rest of the step | 8,000 steps (min) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        minutes = r["step_s"] * r["steps_shipped"] / 60
        print(f"| {name} | {r['precision']} | {r['step_s']:.3f} | {r['views_s']:.3f} | "
              f"{r['step_s'] - r['views_s']:.3f} | {minutes:.0f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                                               "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
