"""Backbone costs: parameters, multiply-adds at 288 x 144, and training throughput on the CPU.

For each backbone (default: resnet-mini, resnet50, resnet50-agw, timm:vit_small_patch16_224), built as the
methods build it (two modalities, per-modality stems, GeM or token pooling, BN-neck):

* **parameters**: with a shared stem, and what each further modality's stem adds;
* **GMACs**: multiply-accumulates of one 288 x 144 image's eval forward, counted by
  ``torch.utils.flop_counter`` (matrix products and convolutions; what papers call "GFLOPs", e.g. 4.1 for
  ResNet-50 at 224 x 224); timm's fused attention is switched off while counting so that the attention
  products are counted;
* **train images/s**: one training step = ``forward_multi`` over ``--batch`` images per modality, a loss on
  the pooled and BN-neck features, backward and an Adam step; one warm-up step, then ``--steps`` timed
  steps. Reported per CPU-second of this process (``time.process_time``) on ``--threads`` threads, which
  other load on the machine disturbs less than wall time, and per wall second.

    OMP_NUM_THREADS=1 python benchmarks/backbones.py --output benchmarks/backbones.md
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODALITIES = ("visible", "infrared")
DEFAULT_BACKBONES = ("resnet-mini", "resnet50", "resnet50-agw", "timm:vit_small_patch16_224")


def build(name: str, stems: str = "per-modality") -> torch.nn.Module:
    from reidkit.config import ModelConfig
    from reidkit.registry import BACKBONES

    return BACKBONES.get(name)(ModelConfig(weights="none"), MODALITIES, stems=stems)


def parameters(name: str) -> tuple[int, int]:
    """(parameters with a shared stem, parameters each further modality's stem adds)."""
    shared = sum(p.numel() for p in build(name, "shared").parameters())
    split = sum(p.numel() for p in build(name, "per-modality").parameters())
    return shared, (split - shared) // (len(MODALITIES) - 1)


def gmacs(name: str, size: tuple[int, int]) -> float:
    """Multiply-accumulates (10^9) of one image's eval forward at ``size``."""
    from torch.utils.flop_counter import FlopCounterMode

    fused = None
    try:
        from timm.layers import config as timm_config

        fused = timm_config._USE_FUSED_ATTN
        timm_config.set_fused_attn(False)  # count q k^T and attn v as the matrix products they are
    except ImportError:
        pass
    try:
        model = build(name).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.randn(1, 3, *size), MODALITIES[0])
    finally:
        if fused is not None:
            timm_config._USE_FUSED_ATTN = fused
    return counter.get_total_flops() / 2 / 1e9


def throughput(name: str, size: tuple[int, int], batch: int, steps: int) -> dict[str, float]:
    """Training images per CPU-second and per wall second (``batch`` images per modality per step)."""
    torch.manual_seed(0)
    model = build(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    images = {m: torch.randn(batch, 3, *size) for m in MODALITIES}

    def step() -> None:
        out = model.forward_multi(images)
        loss = sum(o["feat"].pow(2).mean() + o["pool"].pow(2).mean() for o in out.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocator, first-call overheads
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = steps * batch * len(MODALITIES)
    return {"cpu_s": cpu, "wall_s": wall, "per_cpu_s": n / cpu, "per_wall_s": n / wall}


def host() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = f"Python {platform.python_version()}, torch {torch.__version__}"
    try:
        import timm

        versions += f", timm {timm.__version__}"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores; {versions}; {torch.get_num_threads()} thread(s)"


def parse_size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=list(DEFAULT_BACKBONES))
    parser.add_argument("--flops-size", type=parse_size, default=(288, 144), help="H x W for GMACs")
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[(288, 144), (128, 64)],
                        help="H x W for the training throughput")
    parser.add_argument("--batch", type=int, default=8, help="images per modality per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, help="write the markdown table here (default: print)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))

    load_start = os.getloadavg()[0]
    rows = []
    for name in args.backbones:
        params, per_stem = parameters(name)
        macs = gmacs(name, args.flops_size)
        runs = {size: throughput(name, size, args.batch, args.steps) for size in args.sizes}
        rows.append((name, params, per_stem, macs, runs))
        print(f"{name}: {params / 1e6:.2f} M, {macs:.2f} GMACs, "
              + ", ".join(f"{h}x{w} {r['per_cpu_s']:.1f} img/CPU-s" for (h, w), r in runs.items()), flush=True)
    load_end = os.getloadavg()[0]

    fh, fw = args.flops_size
    head = ["backbone", "params (M)", "+ per modality stem (M)", f"GMACs @ {fh}x{fw}"]
    for h, w in args.sizes:
        head += [f"train img/CPU-s @ {h}x{w}", f"train img/s wall @ {h}x{w}"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, params, per_stem, macs, runs in rows:
        cells = [f"`{name}`", f"{params / 1e6:.2f}", f"{per_stem / 1e6:.3f}", f"{macs:.2f}"]
        for size in args.sizes:
            cells += [f"{runs[size]['per_cpu_s']:.2f}", f"{runs[size]['per_wall_s']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join([
        f"Host: {host()}; 1-minute load average {load_start:.1f} at the start, {load_end:.1f} at the end.",
        (f"Training step: {args.batch} images per modality x {len(MODALITIES)} modalities, "
         f"{args.steps} timed steps after 1 warm-up."),
        "",
        *lines,
    ])
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
