"""Calibrate the synthetic dataset's difficulty: how well do trivial and supervised matchers do?

Measures, on the test split of a synthetic preset (or any generic-layout folder):

(a) a randomly initialised ``resnet-mini`` (BN statistics re-estimated on training images, 3 seeds);
(b) hand-made colour/intensity histograms (RGB per stripe; grey-level per stripe);
(c) a ``resnet-mini`` trained with identity labels (cross-entropy + batch-hard triplet, identities
    aligned across modalities in every batch), a few CPU minutes;

each as cross-modality mAP / rank-1 (every ordered modality pair) and intra-modality mAP (same modality,
other cameras), which together show the modality gap. See docs/synthetic.md for the numbers.

Examples::

    python benchmarks/synthetic_calibration.py --preset standard --json cal.json
    python benchmarks/synthetic_calibration.py --preset standard --knob lookalike_share=0.5 --iterations 600
    python benchmarks/synthetic_calibration.py --root DIR --skip-supervised
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from reidkit.config import ModelConfig
from reidkit.data.datasets.generic import GenericDataset
from reidkit.data.records import Sample

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
log = logging.getLogger("calibration")


# ------------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------------
def load_images(samples: list[Sample], height: int, width: int) -> np.ndarray:
    """[N, H, W, 3] uint8 (grey images replicated to three channels)."""
    out = np.empty((len(samples), height, width, 3), dtype=np.uint8)
    for i, s in enumerate(samples):
        with Image.open(s.path) as img:
            img = img.convert("RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.BILINEAR)
            out[i] = np.asarray(img)
    return out


def masks_of(samples: list[Sample]) -> list[Sample]:
    """The same records with each image path replaced by its part mask's (every sample must have one)."""
    missing = [s.path for s in samples if not s.mask_path]
    if missing:
        raise SystemExit(f"--inputs masks: {len(missing)} images have no mask, e.g. {missing[0]}")
    return [dataclasses.replace(s, path=s.mask_path) for s in samples]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    return (x - MEAN) / STD


# ------------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------------
def _numpy_map(dist: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray, ignore: np.ndarray) -> dict:
    """Market-style mAP / rank-1 (queries without a true match are skipped)."""
    aps, r1 = [], []
    for i in range(dist.shape[0]):
        keep = ~ignore[i]
        order = np.argsort(dist[i][keep], kind="stable")
        hits = (g_ids[keep][order] == q_ids[i])
        if not hits.any():
            continue
        ranks = np.flatnonzero(hits) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        r1.append(float(hits[0]))
    return {"mAP": float(np.mean(aps)), "rank1": float(np.mean(r1))}


def rank_scores(dist: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray, ignore: np.ndarray) -> dict:
    try:
        from reidkit.evaluation import rank_metrics
    except ImportError:  # the shared evaluator is not there yet
        return _numpy_map(dist, q_ids, g_ids, ignore)
    out = rank_metrics(dist, q_ids, g_ids, ignore=ignore)
    return {"mAP": out["mAP"], "rank1": out["rank1"]}


def evaluate(features: np.ndarray, test: list[Sample], modalities: tuple[str, ...]) -> dict:
    """``{"q-to-g": {"mAP", "rank1"}}`` for every ordered modality pair, including q == g (intra:
    same-identity-same-camera entries, hence the query itself, are skipped)."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    ids = np.array([s.person_id for s in test])
    cams = np.array([s.camera for s in test])
    mods = np.array([s.modality for s in test])
    out = {}
    for q in modalities:
        for g in modalities:
            qi, gi = np.flatnonzero(mods == q), np.flatnonzero(mods == g)
            dist = 1 - f[qi] @ f[gi].T
            ignore = (ids[qi][:, None] == ids[gi][None, :]) & (cams[qi][:, None] == cams[gi][None, :])
            out[f"{q}-to-{g}"] = rank_scores(dist, ids[qi], ids[gi], ignore)
    return out


def summarise(scores: dict) -> dict:
    """Mean cross-modality and intra-modality mAP / rank-1."""
    cross = [v for k, v in scores.items() if k.split("-to-")[0] != k.split("-to-")[1]]
    intra = [v for k, v in scores.items() if k.split("-to-")[0] == k.split("-to-")[1]]
    return {"cross_mAP": float(np.mean([v["mAP"] for v in cross])),
            "cross_rank1": float(np.mean([v["rank1"] for v in cross])),
            "intra_mAP": float(np.mean([v["mAP"] for v in intra])),
            "intra_rank1": float(np.mean([v["rank1"] for v in intra]))}


# ------------------------------------------------------------------------------------------------------
# (b) histograms
# ------------------------------------------------------------------------------------------------------
def histogram_features(images: np.ndarray, *, grey: bool, bins: int = 16, stripes: int = 6) -> np.ndarray:
    """Per horizontal stripe, per channel (or grey level) histograms; Hellinger-normalised."""
    x = images.astype(np.float32)
    if grey:
        x = (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    n, h, w, c = x.shape
    q = np.minimum((x / 256 * bins).astype(np.int64), bins - 1)
    feats = []
    for s in range(stripes):
        band = q[:, s * h // stripes:(s + 1) * h // stripes]
        for ch in range(c):
            flat = band[..., ch].reshape(n, -1) + np.arange(n)[:, None] * bins
            hist = np.bincount(flat.ravel(), minlength=n * bins).reshape(n, bins).astype(np.float32)
            feats.append(hist / hist.sum(axis=1, keepdims=True))
    return np.sqrt(np.concatenate(feats, axis=1))


# ------------------------------------------------------------------------------------------------------
# (a), (c) networks
# ------------------------------------------------------------------------------------------------------
def build_backbone(modalities: tuple[str, ...]) -> torch.nn.Module:
    from reidkit.models.backbones import resnet_mini

    return resnet_mini(ModelConfig(), modalities)


@torch.no_grad()
def extract(model: torch.nn.Module, images: np.ndarray, samples: list[Sample], batch: int = 256) -> np.ndarray:
    model.eval()
    mods = [s.modality for s in samples]
    out = np.zeros((len(samples), model.feat_dim), dtype=np.float32)
    for m in sorted(set(mods)):
        idx = np.flatnonzero(np.array(mods) == m)
        for s in range(0, len(idx), batch):
            part = idx[s:s + batch]
            out[part] = model(to_tensor(images[part]), m)["feat"].numpy()
    return out


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, images: np.ndarray, samples: list[Sample], steps: int = 20,
                   batch: int = 64, seed: int = 0) -> None:
    """Re-estimate BatchNorm running statistics on training images (cumulative average)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    rng = np.random.default_rng(seed)
    mods = np.array([s.modality for s in samples])
    for _ in range(steps):
        batch_in = {}
        for m in sorted(set(mods)):
            idx = rng.choice(np.flatnonzero(mods == m), batch // len(set(mods)), replace=False)
            batch_in[m] = to_tensor(images[idx])
        forward_mixed(model, batch_in)
    model.eval()


def forward_mixed(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One forward of every modality's images concatenated, through the shared stem, so that every
    BatchNorm (the stem's included) sees the same mixed-modality statistics in training as its running
    statistics give at evaluation. (``forward_multi`` runs the stem once per modality, so in training the
    stem's BatchNorm normalises each modality with its own batch statistics while evaluation uses running
    statistics averaged over modalities: a train/eval mismatch that cost this baseline most of its accuracy.)
    """
    names = list(batch)
    return model(torch.cat([batch[m] for m in names]), names[0])


def augment(x: torch.Tensor, rng: np.random.Generator, pad: int = 6, grey: float = 0.0) -> torch.Tensor:
    """Random horizontal flip and pad-and-crop, per image; with probability ``grey`` an image becomes grey
    or one random colour channel (CAJ's channel exchange), and half of the others get shuffled channels."""
    n, _, h, w = x.shape
    if grey > 0:  # colour-invariance: grey-scale, one random channel (CAJ), or shuffled channels
        raw = x * STD + MEAN
        choice = rng.random(n)
        luma = (0.299 * raw[:, :1] + 0.587 * raw[:, 1:2] + 0.114 * raw[:, 2:]).expand(-1, 3, -1, -1)
        channel = torch.from_numpy(rng.integers(0, 3, n))
        single = raw[torch.arange(n), channel].unsqueeze(1).expand(-1, 3, -1, -1)
        shuffled = torch.stack([raw[i, torch.from_numpy(rng.permutation(3))] for i in range(n)])
        pick = lambda lo, hi: torch.from_numpy((choice >= lo) & (choice < hi)).view(n, 1, 1, 1)
        out = torch.where(pick(0, grey / 2), luma, raw)
        out = torch.where(pick(grey / 2, grey), single, out)
        out = torch.where(pick(grey, grey + (1 - grey) / 2), shuffled, out)
        x = (out - MEAN) / STD
    flip = torch.from_numpy(rng.random(n) < 0.5)
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def batch_hard_triplet(feat: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    dist = torch.cdist(feat, feat)
    same = labels[:, None] == labels[None, :]
    hardest_pos = (dist * same).max(dim=1).values
    hardest_neg = (dist + same * 1e6).min(dim=1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def train_supervised(images: np.ndarray, samples: list[Sample], modalities: tuple[str, ...], *,
                     iterations: int, ids_per_batch: int, per_id: int, lr: float, seed: int,
                     grey: float = 0.5, forward: str = "mixed") -> torch.nn.Module:
    """resnet-mini + linear identity classifier; every batch holds the same ``ids_per_batch`` identities
    in every modality, ``per_id`` images each; visible images are turned grey with probability ``grey``
    (the usual colour-invariance augmentation of visible-infrared baselines)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_backbone(modalities)
    pids = sorted({s.person_id for s in samples})
    label_of = {p: i for i, p in enumerate(pids)}
    labels = np.array([label_of[s.person_id] for s in samples])
    mods = np.array([s.modality for s in samples])
    pool = {(m, l): np.flatnonzero((mods == m) & (labels == l)) for m in modalities for l in range(len(pids))}
    classifier = torch.nn.Linear(model.feat_dim, len(pids), bias=False)
    params = list(model.parameters()) + list(classifier.parameters())
    opt = torch.optim.Adam(params, lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=iterations, pct_start=0.1)
    started = time.perf_counter()
    for it in range(iterations):
        model.train()
        chosen = rng.choice(len(pids), ids_per_batch, replace=False)
        batch, batch_labels = {}, []
        for m in modalities:
            idx = np.concatenate([rng.choice(pool[(m, l)], per_id, replace=len(pool[(m, l)]) < per_id)
                                  for l in chosen])
            batch[m] = augment(to_tensor(images[idx]), rng, pad=max(1, images.shape[1] // 20),
                               grey=grey if m == "visible" else 0.0)
            batch_labels.append(torch.from_numpy(labels[idx]))
        if forward == "mixed":
            out = forward_mixed(model, batch)
        else:  # the stem's BatchNorm sees one modality at a time (IMSL's official forward)
            parts = model.forward_multi(batch)
            out = {k: torch.cat([parts[m][k] for m in batch]) for k in ("feat", "pool")}
        feat, pooled, y = out["feat"], out["pool"], torch.cat(batch_labels)
        loss = F.cross_entropy(classifier(feat), y, label_smoothing=0.1) + batch_hard_triplet(pooled, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 100 == 0 or it == iterations - 1:
            log.info("iter %d/%d loss %.3f (%.0f s)", it, iterations, loss.item(), time.perf_counter() - started)
    model.classifier = classifier  # kept for diagnostics (training-set accuracy)
    return model


def score_run(run_dir: Path, test: list[Sample]) -> tuple[dict, int, str]:
    """A finished reidkit run's last model on the calibration's test images: (scores, steps, method)."""
    from reidkit.engine.run import restore_checkpoint

    restored = restore_checkpoint(run_dir / "checkpoints" / "last.pt", device="cpu")
    by_path = {s.path: s for p in restored.dataset.protocols.values() for s in [*p.query, *p.gallery_pool]}
    missing = [s.path for s in test if s.path not in by_path]
    if missing:
        raise SystemExit(f"--from-run: {run_dir} was trained on other data ({missing[0]} is not in its test set)")
    feats = restored.trainer().features_fn([by_path[s.path] for s in test]).numpy()
    optim = restored.cfg.optim
    return (evaluate(feats, test, tuple(restored.dataset.modalities)), optim.epochs * optim.iterations,
            restored.cfg.method)


# ------------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------------
def parse_knob(text: str) -> tuple[str, float]:
    key, _, value = text.partition("=")
    return key.strip(), float(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--seed", type=int, default=0, help="dataset seed")
    ap.add_argument("--root", help="an existing dataset folder (skips generation)")
    ap.add_argument("--knob", action="append", default=[], help="generator knob override k=v (repeatable)")
    ap.add_argument("--work", help="where to generate a knob-overridden dataset (default: a temp folder)")
    ap.add_argument("--iterations", type=int, default=800, help="supervised training steps")
    ap.add_argument("--ids-per-batch", type=int, default=8)
    ap.add_argument("--per-id", type=int, default=4, help="images per identity per modality in a batch")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--grey", type=float, default=0.5, help="probability of grey-scaling a visible training image")
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--height", type=int, default=0, help="network input height (default: the images' own)")
    ap.add_argument("--width", type=int, default=0, help="network input width (default: the images' own)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-ids", type=int, default=0, help="override the preset's training identities")
    ap.add_argument("--train-shots", type=int, default=0, help="override the preset's shots per camera")
    ap.add_argument("--eval-train", action="store_true", help="also score the supervised model on train ids")
    ap.add_argument("--skip-supervised", action="store_true")
    ap.add_argument("--forward", choices=("mixed", "multi"), default="mixed",
                    help="mixed: every BatchNorm sees the modalities together (default); multi: the shared "
                         "stem sees one modality at a time (backbone.forward_multi)")
    ap.add_argument("--skip-floors", action="store_true", help="skip (a) and (b)")
    ap.add_argument("--from-run", type=Path,
                    help="a finished `reidkit run` on this preset: score its last model as matcher (c) with the "
                         "same evaluation (every modality pair, intra included) instead of training one here")
    ap.add_argument("--inputs", choices=("images", "masks"), default="images",
                    help="masks: every matcher sees the part masks under masks/ instead of the images (how much "
                         "identity the shape input of IMSL's SMR carries)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)

    from reidkit.data.synthetic import PRESETS, cached_root, generate

    knobs = dict(parse_knob(k) for k in args.knob)
    if args.train_ids or args.train_shots:  # a one-off preset variant, for sizing experiments
        base = PRESETS[args.preset]
        variant = dataclasses.replace(base, name=f"{base.name}-variant", train_ids=args.train_ids or base.train_ids,
                                      train_shots=args.train_shots or base.train_shots)
        PRESETS[variant.name] = variant
        args.preset = variant.name
        knobs = knobs or {"diversity": base.knobs.diversity}  # force generation into --work
    t0 = time.perf_counter()
    if args.root:
        root = Path(args.root)
    elif knobs:
        work = Path(args.work or tempfile.mkdtemp(prefix="reidkit-cal-"))
        root = generate(args.preset, work / "data", seed=args.seed, progress=False, **knobs)
    else:
        root = cached_root(args.preset, seed=args.seed, progress=False)
    gen_s = time.perf_counter() - t0
    ds = GenericDataset.from_root(root)
    test = sorted({s for p in ds.protocols.values() for s in p.query}, key=lambda s: s.path)
    if args.inputs == "masks":
        ds.train, test = masks_of(ds.train), masks_of(test)
    height, width = np.asarray(Image.open(ds.train[0].path)).shape[:2]
    height, width = args.height or height, args.width or width
    train_images = load_images(ds.train, height, width)
    test_images = load_images(test, height, width)
    results: dict = {"root": str(root), "inputs": args.inputs, "preset": args.preset, "seed": args.seed, "knobs": knobs,
                     "generate_s": round(gen_s, 1), "train_images": len(ds.train), "test_images": len(test),
                     "size": [int(height), int(width)], "iterations": args.iterations,
                     "load_before": round(os.getloadavg()[0], 2)}

    for name, grey in () if args.skip_floors else (("hist_rgb", False), ("hist_grey", True)):
        results[name] = evaluate(histogram_features(test_images, grey=grey), test, ds.modalities)
        log.info("%s %s", name, summarise(results[name]))

    for bn in () if args.skip_floors else ("default", "recalibrated"):
        runs = []
        for s in range(3):
            torch.manual_seed(100 + s)
            model = build_backbone(ds.modalities)
            if bn == "recalibrated":
                recalibrate_bn(model, train_images, ds.train, seed=s)
            runs.append(summarise(evaluate(extract(model, test_images, test), test, ds.modalities)))
        results[f"random_{bn}_bn"] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        log.info("random init (%s BN) %s", bn, results[f"random_{bn}_bn"])

    if args.from_run:
        results["supervised"], results["iterations"], results["from_run"] = score_run(args.from_run, test)
        log.info("%s %s", args.from_run, summarise(results["supervised"]))
    elif not args.skip_supervised:
        t1 = time.perf_counter()
        model = train_supervised(train_images, ds.train, ds.modalities, iterations=args.iterations,
                                 ids_per_batch=args.ids_per_batch, per_id=args.per_id, lr=args.lr,
                                 seed=args.train_seed, grey=args.grey, forward=args.forward)
        results["supervised"] = evaluate(extract(model, test_images, test), test, ds.modalities)
        results["supervised_train_s"] = round(time.perf_counter() - t1, 1)
        if args.eval_train:
            results["supervised_on_train"] = evaluate(extract(model, train_images, ds.train), ds.train,
                                                      ds.modalities)
        log.info("supervised %s", summarise(results["supervised"]))

    table = {k: (summarise(v) if isinstance(v, dict) and any("-to-" in key for key in v) else v)
             for k, v in results.items() if k.startswith(("hist", "random", "supervised")) and isinstance(v, dict)}
    results["summary"] = table
    results["load_after"] = round(os.getloadavg()[0], 2)
    print(f"{'matcher':<24} {'cross mAP':>9} {'cross R1':>9} {'intra mAP':>9} {'intra R1':>9}")
    for name, row in table.items():
        print(f"{name:<24} {row['cross_mAP']:9.3f} {row['cross_rank1']:9.3f} {row['intra_mAP']:9.3f} "
              f"{row['intra_rank1']:9.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
