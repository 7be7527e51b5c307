"""bfloat16 against float32 on this CPU, side by side in one process: is bfloat16 the faster path here?

The paths that choose bfloat16 on their own (`reidkit pretrain --amp auto`, the kNN's ``precision="auto"``)
follow :func:`reidkit.hardware.native_bf16`; this measures what that choice is worth on the machine at hand:

* **matmul**: a 1024 x 2048 by 2048 x 4096 product (a kNN tile);
* **train step**: resnet-mini (channels-last, batch 64 at 128 x 64): forward under autocast or not, a loss on
  the BN-neck features, backward;
* **kNN**: :func:`reidkit.cluster.knn` (k = 30) of 8,000 structured features (D = 2048), ``precision="mixed"``
  (bfloat16 nominations, float32 re-scoring) against ``"fp32"``.

Medians of ``--reps`` repetitions after a warm-up, alternating the two precisions so that other load falls on
both alike (ratios are the result when the machine is busy).

    python benchmarks/cpu_bf16.py
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from memory_format import build  # benchmarks/ is the script's folder


def _median_pair(fn_fp32, fn_bf16, reps: int) -> tuple[float, float]:
    fn_fp32(), fn_bf16()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        for i, fn in enumerate((fn_fp32, fn_bf16)):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list[str] | None = None) -> int:
    from reidkit.cluster import knn
    from reidkit.cluster.synthetic import structured_features
    from reidkit.hardware import native_bf16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, native bfloat16: "
          f"{native_bf16()}, oneDNN bfloat16 (emulation counted): {torch.ops.mkldnn._is_mkldnn_bf16_supported()}, "
          f"{args.threads} thread(s), median of {args.reps} (s)\n")
    print("| work | float32 | bfloat16 | bfloat16 / float32 |\n|---|---:|---:|---:|")

    a, b = torch.randn(1024, 2048), torch.randn(2048, 4096)
    a16, b16 = a.bfloat16(), b.bfloat16()
    rows = [("matmul 1024 x 2048 x 4096", *_median_pair(lambda: a @ b, lambda: a16 @ b16, args.reps))]

    model = build("resnet-mini", channels_last=True)
    x = torch.randn(64, 3, 128, 64).contiguous(memory_format=torch.channels_last)

    def step(bf16: bool) -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(x, "visible")["feat"].float().square().mean()
        loss.backward()

    rows.append(("resnet-mini train step, batch 64", *_median_pair(lambda: step(False), lambda: step(True),
                                                                    args.reps)))
    feats = torch.from_numpy(structured_features(8000, 2048, seed=0).features)
    rows.append(("kNN of 8,000 x 2048, k = 30", *_median_pair(lambda: knn(feats, 30, precision="fp32"),
                                                              lambda: knn(feats, 30, precision="mixed"), args.reps)))
    for name, t32, t16 in rows:
        print(f"| {name} | {t32:.3f} | {t16:.3f} | {t16 / t32:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
