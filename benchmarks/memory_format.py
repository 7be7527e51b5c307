"""``model.channels_last``: the same backbone in the contiguous (NCHW) and channels-last (NHWC) memory
formats, timed side by side in one process on the CPU.

For each backbone, built as the methods build it (two modalities, GeM pooling, BN-neck), alternating
between the two formats every repetition so that other load on the machine falls on both alike:

* **train step**: forward of ``--batch`` images of one modality, a loss on the BN-neck features, backward;
* **eval forward**: the same batch under ``torch.no_grad`` in eval mode (feature extraction for clustering
  and evaluation);
* **max |diff|**: the largest difference between the two formats' eval features for the same weights (the
  formats add in a different order; nothing else changes).

Medians over ``--reps`` repetitions after one warm-up, on ``--threads`` torch threads.

    python benchmarks/memory_format.py   # the table of benchmarks/memory-format.md
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from pathlib import Path

import torch

MODALITIES = ("visible", "infrared")
#: backbone -> (height, width, batch): the synthetic presets' size for resnet-mini, the real datasets' for
#: the ResNet-50s (a smaller batch to keep the benchmark short)
CASES = {"resnet-mini": (128, 64, 64), "resnet50": (288, 144, 16)}


def build(name: str, channels_last: bool) -> torch.nn.Module:
    from reidkit.config import ModelConfig
    from reidkit.registry import BACKBONES

    torch.manual_seed(0)
    cfg = dataclasses.replace(ModelConfig(), weights="none", channels_last=channels_last)
    model = BACKBONES.get(name)(cfg, MODALITIES)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _train_step(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    model(x, MODALITIES[0])["feat"].square().mean().backward()


def _eval_forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x, MODALITIES[0])["feat"]


def measure(name: str, reps: int) -> dict[str, float]:
    height, width, batch = CASES[name]
    models = {fmt: build(name, fmt) for fmt in (False, True)}
    models[True].load_state_dict(models[False].state_dict())
    x = torch.randn(batch, 3, height, width)
    inputs = {False: x, True: x.contiguous(memory_format=torch.channels_last)}
    times: dict[tuple[bool, str], list[float]] = {(f, k): [] for f in (False, True) for k in ("train", "eval")}
    for rep in range(reps + 1):
        for fmt in (False, True):
            for kind, fn in (("train", _train_step), ("eval", _eval_forward)):
                t0 = time.perf_counter()
                fn(models[fmt], inputs[fmt])
                if rep:  # the first repetition warms up
                    times[(fmt, kind)].append(time.perf_counter() - t0)
    diff = (_eval_forward(models[False], inputs[False]) - _eval_forward(models[True], inputs[True])).abs().max()
    med = {key: statistics.median(v) * 1000 for key, v in times.items()}
    return {"size": f"{height} x {width}", "batch": batch,
            "train_nchw": med[(False, "train")], "train_nhwc": med[(True, "train")],
            "eval_nchw": med[(False, "eval")], "eval_nhwc": med[(True, "eval")], "max_diff": float(diff)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", help="also write the markdown table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lines = [f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
             f"{args.threads} thread(s), median of {args.reps} repetitions (ms)", "",
             "| backbone | size | batch | train NCHW | train NHWC | speed-up | eval NCHW | eval NHWC | speed-up "
             "| max abs diff |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in args.backbones:
        r = measure(name, args.reps)
        lines.append(f"| {name} | {r['size']} | {r['batch']} | {r['train_nchw']:.0f} | {r['train_nhwc']:.0f} | "
                     f"{r['train_nchw'] / r['train_nhwc']:.2f} | {r['eval_nchw']:.0f} | {r['eval_nhwc']:.0f} | "
                     f"{r['eval_nchw'] / r['eval_nhwc']:.2f} | {r['max_diff']:.1e} |")
        print(lines[-1], flush=True)
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
