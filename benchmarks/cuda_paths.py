"""The CUDA paths, measured side by side on one GPU: mixed precision and memory format for training and
feature extraction, and the clustering kNN and pseudo-labels on the GPU against the same machine's CPU.

Training and extraction (``--backbones``): each backbone built as the methods build it (two modalities,
GeM pooling, BN-neck, random weights), at the synthetic presets' size for resnet-mini and the real datasets'
for ResNet-50, under each ``optim.amp`` setting the trainer offers (``off`` = float32, ``bf16``, ``fp16`` with
a gradient scaler) in both memory formats (``model.channels_last``). A train step is forward, a loss on the
BN-neck features, backward and an Adam update, as ``reidkit run`` does; extraction is the forward pass in
eval mode under ``torch.no_grad`` (clustering and evaluation features). Images per second are medians of
``--blocks`` blocks of ``--steps`` steps, timed between CUDA synchronisations after a warm-up; the settings
alternate inside every block round so that clock changes fall on all alike. ``feature error`` is
||f - f_fp32|| / ||f_fp32|| of the eval features of the same weights and images against float32 NCHW.

Clustering (``--cluster-sizes``): the structured features of :mod:`reidkit.cluster.synthetic` (identity
clusters, a modality offset, outliers; D = 2048), :func:`reidkit.cluster.knn` (k = 30) and the full
:func:`reidkit.cluster.pseudo_labels` (k-reciprocal Jaccard + DBSCAN, default arguments) from CUDA tensors
and from CPU tensors on all of the machine's cores, with the agreement of the two (identical kNN lists,
ARI of the labels).

    python benchmarks/cuda_paths.py --output cuda.md      # on a CUDA machine
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from memory_format import MODALITIES, build  # benchmarks/ is the script's folder

#: backbone -> (height, width, train batch, eval batch)
CASES = {"resnet-mini": (128, 64, 64, 256), "resnet50": (288, 144, 64, 256)}
AMPS = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Setting:
    """One (amp, memory format) pair: its own model copy, optimiser and gradient scaler."""

    def __init__(self, name: str, amp: str, channels_last: bool, state: dict, device: torch.device) -> None:
        self.amp, self.channels_last = amp, channels_last
        self.model = build(name, channels_last).to(device)
        self.model.load_state_dict(state)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-5)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
        self.label = f"{amp} {'NHWC' if channels_last else 'NCHW'}"

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _autocast(self):
        dtype = AMPS[self.amp]
        return torch.autocast("cuda", dtype=dtype, enabled=dtype is not None)

    def train_step(self, x: torch.Tensor) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.model(self._input(x), MODALITIES[0])["feat"].float().square().mean()
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        with torch.no_grad(), self._autocast():
            return self.model(self._input(x), MODALITIES[0])["feat"].float()


def _timed(fn, steps: int) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def measure_backbone(name: str, steps: int, blocks: int, device: torch.device) -> list[dict]:
    height, width, train_batch, eval_batch = CASES[name]
    state = build(name, False).to(device).state_dict()
    settings = [Setting(name, amp, cl, state, device) for amp in AMPS for cl in (False, True)]
    g = torch.Generator(device="cpu").manual_seed(0)
    x_train = torch.randn(train_batch, 3, height, width, generator=g).to(device)
    x_eval = torch.randn(eval_batch, 3, height, width, generator=g).to(device)
    reference = settings[0].features(x_eval)
    errors = {s.label: float((s.features(x_eval) - reference).norm() / reference.norm()) for s in settings}
    times: dict[str, dict[str, list[float]]] = {s.label: {"train": [], "eval": []} for s in settings}
    for block in range(blocks + 1):
        for s in settings:
            train = _timed(lambda s=s: s.train_step(x_train), steps)
            extract = _timed(lambda s=s: s.features(x_eval), steps)
            if block:  # the first round warms up (cuDNN autotuning, allocator)
                times[s.label]["train"].append(train)
                times[s.label]["eval"].append(extract)
    rows = []
    for s in settings:
        t_train, t_eval = (statistics.median(times[s.label][k]) for k in ("train", "eval"))
        rows.append({"backbone": name, "size": f"{height} x {width}", "setting": s.label,
                     "train_batch": train_batch, "train_img_s": train_batch / t_train, "train_ms": t_train * 1e3,
                     "eval_batch": eval_batch, "eval_img_s": eval_batch / t_eval, "error": errors[s.label]})
    return rows


def measure_clustering(n: int, device: torch.device) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from reidkit.cluster import knn, pseudo_labels
    from reidkit.cluster.synthetic import structured_features

    feats = torch.from_numpy(structured_features(n, 2048, seed=0).features)
    out: dict = {"n": n, "cpu_threads": torch.get_num_threads()}
    runs = {}
    for where, x in (("cuda", feats.to(device)), ("cpu", feats)):
        knn(x[:2048].contiguous(), 30)  # warm-up (CUDA context, kernels)
        if where == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        nb = knn(x, 30)
        out[f"knn_{where}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        labels = pseudo_labels(x)
        out[f"labels_{where}_s"] = time.perf_counter() - t0
        runs[where] = (nb, labels)
    (nb_gpu, lab_gpu), (nb_cpu, lab_cpu) = runs["cuda"], runs["cpu"]
    out["knn_same_lists"] = float((nb_gpu.indices == nb_cpu.indices).all(axis=1).mean())
    out["knn_max_sim_diff"] = float(abs(nb_gpu.similarities - nb_cpu.similarities).max())
    out["labels_ari"] = float(adjusted_rand_score(lab_cpu, lab_gpu))
    out["clusters"] = int(lab_gpu.max() + 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--cluster-sizes", type=int, nargs="*", default=[34167])
    parser.add_argument("--output", help="also write the markdown tables here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device (this benchmark measures the GPU paths)")
    device = torch.device("cuda")
    torch.set_num_threads(os.cpu_count() or 1)
    lines: list[str] = []

    def emit(*rows: str) -> None:
        lines.extend(rows)
        print(*rows, sep="\n", flush=True)

    emit(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
         f"cuDNN {torch.backends.cudnn.version()}; host CPU {platform.machine()}, {os.cpu_count()} cores", "",
         "| backbone | size | amp, format | train img/s (batch) | train ms/step | eval img/s (batch) "
         "| feature error vs fp32 |", "|---|---|---|---:|---:|---:|---:|")
    for name in args.backbones:
        for r in measure_backbone(name, args.steps, args.blocks, device):
            emit(f"| {r['backbone']} | {r['size']} | {r['setting']} | {r['train_img_s']:.0f} ({r['train_batch']}) "
                 f"| {r['train_ms']:.1f} | {r['eval_img_s']:.0f} ({r['eval_batch']}) | {r['error']:.1e} |")
    if args.cluster_sizes:
        emit("", "| N | kNN CUDA s | kNN CPU s | pseudo-labels CUDA s | pseudo-labels CPU s | same kNN lists "
             "| max sim diff | labels ARI | clusters |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.cluster_sizes:
        c = measure_clustering(n, device)
        emit(f"| {n} | {c['knn_cuda_s']:.2f} | {c['knn_cpu_s']:.2f} | {c['labels_cuda_s']:.2f} "
             f"| {c['labels_cpu_s']:.2f} | {c['knn_same_lists']:.4f} | {c['knn_max_sim_diff']:.1e} "
             f"| {c['labels_ari']:.4f} | {c['clusters']} |")
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
