"""Mask sources of ``reidkit data masks`` against the synthetic data's exact masks, and the mask folders and
tables of the training-effect suite (benchmarks/mask-sources.yaml).

    python benchmarks/mask_sources.py iou --write benchmarks/mask-sources.md     # IoU table
    python benchmarks/mask_sources.py write masks/                                # the suite's mask folders
    python benchmarks/mask_sources.py deltas runs/mask-sources                    # its paired deltas

``iou``: every training image of the synthetic presets ``standard`` (visible + thermal) and ``standard-nir``
(visible + near-infrared), seed 0 (the benchmark's data): the person region of each source's mask against
the exact one (the generator's part map, any part = person; occluded pixels are background), per image
IoU = |A and B| / |A or B|, then per modality the mean and standard deviation over images, the pooled IoU
(all pixels of all images at once) and the share of empty masks. Sources that cannot be built
here (mediapipe without the ``masks`` extra, parsing without ``--parsing-checkpoint``) get a line saying
why. The same code path as ``reidkit data masks``: each source is the CLI's (:mod:`reidkit.data.masks_sources`).

``write DIR``: ``DIR/<preset>/<source>/`` for each preset and source, through
:func:`reidkit.data.masks.write_masks` (what ``reidkit data masks synthetic --set preset=P --source S``
writes), plus ``exact-binary``: the exact masks reduced to person / background, which separates what a
binary mask loses (the parts) from what a wrong outline costs, and ``mixed`` (:data:`MIXED`: mediapipe on
visible images, the silhouette on infrared ones, when mediapipe is installed).

``deltas DIR``: from a finished ``mask-sources.yaml`` folder, per preset, method variant and source, the
seed-paired difference of the mean mAP over both directions to the same variant trained on the exact masks,
and to the same method without the part the masks feed (:data:`WITHOUT`: CHCR's mask merge against its
image merge, IMSL's shape link against MMC's link on the same masks); with ``--without-smr PRESET=DIR``
(IMSL runs of the same recipe without SMR, e.g. the ablation ladder's ``2-mmc+mil`` rung), the IMSL SMR
rows get theirs to IMSL without SMR:

    python benchmarks/mask_sources.py deltas runs/mask-sources \\
        --without-smr standard=runs/ladders/synthetic-standard/imsl/2-mmc+mil \\
        --without-smr standard-nir=runs/ladders/synthetic-standard-nir/imsl/2-mmc+mil

With ``--write FILE``, the text between ``<!-- iou:begin -->`` and ``<!-- iou:end -->`` (``deltas``: between
``<!-- deltas:begin -->`` and ``<!-- deltas:end -->``) is replaced, or the block appended when absent.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

PRESETS = ("standard", "standard-nir")
SOURCES = ("silhouette", "mediapipe", "parsing")
#: the recommended mix for real data, written by ``write``: the segmenter on the colour images, the
#: silhouette on the infrared ones
MIXED = {"visible": "mediapipe", "infrared": "silhouette"}
PRESET_WORDS = {"standard": "visible + thermal", "standard-nir": "visible + near-infrared"}


def training_set(preset: str):
    """The ``synthetic`` dataset of ``preset`` (seed 0, the benchmark's), exact masks attached."""
    from reidkit.config import DataConfig
    from reidkit.registry import DATASETS

    cls = DATASETS.get("synthetic")
    return cls.from_config(DataConfig(dataset="synthetic"), cls.Config(preset=preset))


def build(label: str, parsing_checkpoint: str | None):
    """``(source, None)`` or ``(None, why it is not available)`` for a source label of this script."""
    from reidkit.data.masks import MaskError
    from reidkit.data.masks_sources import make_source

    if label == "parsing" and not parsing_checkpoint:
        return None, "no human-parsing checkpoint on this machine (pass --parsing-checkpoint FILE)"
    try:
        return make_source(label, checkpoint=parsing_checkpoint), None
    except MaskError as e:
        return None, str(e)


def iou(pred: np.ndarray, exact: np.ndarray) -> float:
    union = np.logical_or(pred, exact).sum()
    return float(np.logical_and(pred, exact).sum() / union) if union else 1.0


def measure(samples, source, limit: int | None = None) -> dict[str, dict[str, float]]:
    """Per modality: ``{"mean", "std", "pooled", "ms", "images", "empty"}`` (IoU fractions; ``ms``: the
    source's own time per image, without file reading, a rough figure on a shared machine)."""
    from reidkit.data.image_dataset import load_image
    from reidkit.data.masks import person_region

    out = {}
    for modality in sorted({s.modality for s in samples}):
        chosen = [s for s in samples if s.modality == modality][:limit]
        scores, inter, union, empty, seconds = [], 0, 0, 0, 0.0
        batch = max(1, int(getattr(source, "batch_size", 1)))
        for start in range(0, len(chosen), batch):
            part = chosen[start:start + batch]
            images = [load_image(s.path) for s in part]
            t0 = time.perf_counter()
            preds = source(images)
            seconds += time.perf_counter() - t0
            for s, pred in zip(part, preds):
                exact = person_region(s.mask_path)
                scores.append(iou(pred, exact))
                inter += int(np.logical_and(pred, exact).sum())
                union += int(np.logical_or(pred, exact).sum())
                empty += int(not pred.any())
        out[modality] = {"mean": statistics.fmean(scores), "std": statistics.pstdev(scores),
                         "pooled": inter / union, "ms": 1000 * seconds / len(chosen), "images": len(chosen),
                         "empty": empty / len(chosen)}
    return out


def iou_table(presets, labels, parsing_checkpoint=None, limit=None) -> str:
    rows, missing = [], {}
    built = {label: build(label, parsing_checkpoint) for label in labels}
    for preset in presets:
        samples = training_set(preset).train
        for label, (source, why) in built.items():
            if source is None:
                missing[label] = why
                continue
            print(f"{preset} {label} ...", file=sys.stderr, flush=True)
            for modality, r in measure(samples, source, limit).items():
                rows.append(f"| {preset} | {modality} | {label} | {100 * r['mean']:.1f} ± {100 * r['std']:.1f} | "
                            f"{100 * r['pooled']:.1f} | {100 * r['empty']:.1f} | {r['images']} |")
    cmd = "python benchmarks/mask_sources.py iou" + (f" --limit {limit}" if limit else "") + \
        " --write benchmarks/mask-sources.md"
    lines = [f"Command (with the `masks` extra installed: `pip install '.[masks]'`): `{cmd}`", "",
             "| preset | modality | source | IoU mean ± std (%) | pooled IoU (%) | empty masks (%) | images |",
             "|---|---|---|---:|---:|---:|---:|", *rows]
    if missing:
        lines += ["", "Not measured: " + "; ".join(f"`{k}`: {v}" for k, v in missing.items()) + "."]
    versions = environment()
    lines += ["", f"Environment: {versions}."]
    return "\n".join(lines)


def environment() -> str:
    import platform

    import torch

    parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}", f"numpy {np.__version__}",
             f"torch threads {torch.get_num_threads()}"]
    try:
        import mediapipe

        parts.append(f"mediapipe {mediapipe.__version__}")
    except ImportError:
        parts.append("mediapipe not installed")
    return ", ".join(parts)


def write_folders(out: Path, presets, labels, parsing_checkpoint=None) -> None:
    """``out/<preset>/<label>/`` for each available source, and ``out/<preset>/exact-binary/``."""
    from reidkit.data.masks import mask_file, person_region, save_mask, write_masks

    for preset in presets:
        data = training_set(preset)
        folder = out / preset / "exact-binary"
        for s in data.train:
            target = mask_file(s, data.root, folder)
            if not target.is_file():
                save_mask(person_region(s.mask_path), target)
        print(f"{folder}: {len(data.train)} masks", file=sys.stderr)
        for label in labels:
            source, why = build(label, parsing_checkpoint)
            if source is None:
                print(f"{preset} {label}: skipped ({why})", file=sys.stderr)
                continue
            summary = write_masks(data.train, data.root, out / preset / label, source, record=record(data, preset))
            print(f"{summary.output}: {summary.written} written, {summary.skipped} there", file=sys.stderr)
        sources = {m: build(label, parsing_checkpoint)[0] for m, label in MIXED.items()}
        if all(sources.values()):
            for modality, source in sources.items():
                chosen = [s for s in data.train if s.modality == modality]
                write_masks(chosen, data.root, out / preset / "mixed", source, record=record(data, preset))
            print(f"{out / preset / 'mixed'}: {MIXED}", file=sys.stderr)


def record(data, preset: str) -> dict:
    return {"dataset": "synthetic", "root": data.root, "data": {"preset": preset}}


def mean_map(metrics: dict) -> float:
    """Mean mAP over a run's protocols (both directions), in %."""
    return 100.0 * float(np.mean([v["mAP"] for v in metrics["results"].values()]))


def seed_scores(folder: Path) -> dict[int, float]:
    """``{seed: mean mAP (%)}`` of the finished runs under ``folder`` (one variant's folder)."""
    from reidkit.bench.results import collect_runs

    return {r.seed: mean_map(r.metrics) for r in collect_runs(folder)[1] if r.status == "done" and r.seed is not None}


def pair_precision(runs: list[dict]) -> str:
    """``"31 → 58"``: the share of same-cluster visible-infrared pairs that are one person
    (``cross_pair_precision`` of the runs' epoch records), first and last epoch, mean over the runs that
    logged it, in %."""
    key = "cross_pair_precision"
    ends = [(e[0][key], e[-1][key]) for e in (m.get("epochs") or [] for m in runs)
            if e and key in e[0] and key in e[-1]]
    if not ends:
        return ""
    first, last = (100 * statistics.fmean(end) for end in zip(*ends))
    return f"{first:.0f} → {last:.0f}"


def paired_cells(per_seed: dict[int, float], ref: dict[int, float]) -> tuple[str, str]:
    """``("0: +1.0, 1: -0.5", "+0.2")``: per-seed and mean differences over the seeds both have."""
    d = {s: v - ref[s] for s, v in sorted(per_seed.items()) if s in ref}
    if not d:
        return "no common seed", ""
    return ", ".join(f"{s}: {v:+.1f}" for s, v in d.items()), f"{statistics.fmean(d.values()):+.1f}"


#: what each mask-fed variant is paired with to ask "does it help at all?": ``(method, variant, masks)``
#: of the run without the part the masks feed (``None`` masks: the same source's runs)
WITHOUT = {
    ("chcr", "merge-masks"): ("chcr", "image", "exact"),  # CHCR's published cross-merge: never reads masks
    ("imsl", "shape-link"): ("imsl", "smr", None),  # MMC's shared centroids link the modalities, same masks
}
WITHOUT_WORDS = ("Pairs right: of the visible-infrared image pairs that share a pseudo-label, the share "
                 "that are one person (`cross_pair_precision`). Δ without it: `imsl/smr` against IMSL "
                 "without SMR (the same recipe, `method_args.smr: false`); `chcr/merge-masks` against "
                 "`chcr/image` (CHCR's published cross-merge of the image features, which never reads the "
                 "masks); `imsl/shape-link` against `imsl/smr` on the same masks (MMC's shared centroids "
                 "link the modalities instead of the shape).")


def deltas_table(folder: Path, without_smr: dict[str, Path] | None = None) -> str:
    """Seed-paired mean-mAP differences of each source's runs to the exact masks' (``<preset>.exact``), and of
    each mask-fed variant to the same method without the part the masks feed (:data:`WITHOUT`).

    ``without_smr``: ``{preset: folder}`` of IMSL runs without SMR (``folder/seed*/metrics.json``, the same
    recipe with ``method_args.smr: false``, e.g. the ablation ladder's ``2-mmc+mil`` rung), the ``imsl/smr``
    rows' pair: whether SMR on those masks helps at all."""
    from reidkit.bench.results import collect_runs

    without_smr = {p: seed_scores(Path(f)) for p, f in (without_smr or {}).items()}
    _, records = collect_runs(folder)
    # (preset, method, variant, masks) -> seed -> metrics.json
    runs: dict[tuple[str, str, str, str], dict[int, dict]] = {}
    for r in records:
        if r.status != "done" or r.seed is None or "." not in r.dataset:
            continue
        preset, _, source = r.dataset.partition(".")  # the suite's dataset labels: <preset>.<masks>
        runs.setdefault((preset, r.method, r.variant or "", source), {})[r.seed] = r.metrics
    scores = {key: {seed: mean_map(m) for seed, m in by_seed.items()} for key, by_seed in runs.items()}

    def without(preset: str, method: str, variant: str, source: str) -> dict[int, float]:
        if (method, variant) == ("imsl", "smr"):
            return without_smr.get(preset, {})
        if (method, variant) not in WITHOUT:
            return {}
        base_method, base_variant, base_source = WITHOUT[method, variant]
        return scores.get((preset, base_method, base_variant, base_source or source), {})

    lines = ["| preset | method / variant | masks | mean mAP (%) | Δ to exact, per seed (points) | mean Δ "
             "| Δ without it, per seed | mean Δ | pairs right, first → last epoch (%) |",
             "|---|---|---|---:|---|---:|---|---:|---:|"]
    order = {name: i for i, name in enumerate(("exact", "exact-binary", "silhouette", "mixed", "mediapipe"))}
    for (preset, method, variant, source), per_seed in sorted(
            scores.items(), key=lambda kv: (kv[0][:3], order.get(kv[0][3], len(order)), kv[0][3])):
        ref = scores.get((preset, method, variant, "exact"), {})
        base = without(preset, method, variant, source)
        cells = [preset, f"{method}/{variant}", source, f"{statistics.fmean(per_seed.values()):.1f}",
                 *(paired_cells(per_seed, ref) if source != "exact" and ref else ("", "")),
                 *(paired_cells(per_seed, base) if base else ("", "")),
                 pair_precision(list(runs[preset, method, variant, source].values()))]
        lines.append("|" + "|".join(f" {c} " if c else " " for c in cells) + "|")
    lines += ["", WITHOUT_WORDS]
    if without_smr:
        lines.append("")
        lines.append("IMSL without SMR (seed: mean mAP %): " + "; ".join(
            f"{p}: " + ", ".join(f"{s}: {v:.1f}" for s, v in sorted(runs.items()))
            for p, runs in sorted(without_smr.items())))
    return "\n".join(lines)


def replace_block(path: Path, name: str, text: str) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text}\n{end}"
    old = path.read_text() if path.is_file() else ""
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = (old.rstrip() + "\n\n" if old else "") + block + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("iou", "write"):
        p = sub.add_parser(name)
        p.add_argument("--preset", action="append", choices=PRESETS, help="default: both")
        p.add_argument("--source", action="append", choices=SOURCES, help="default: all")
        p.add_argument("--parsing-checkpoint", help="a TorchScript parser for the parsing source")
    sub.choices["iou"].add_argument("--limit", type=int, help="images per modality (default: all)")
    sub.choices["iou"].add_argument("--write", type=Path, help="replace the iou block of this markdown file")
    sub.choices["write"].add_argument("output", type=Path)
    p = sub.add_parser("deltas")
    p.add_argument("folder", type=Path)
    p.add_argument("--write", type=Path, help="replace the deltas block of this markdown file")
    p.add_argument("--without-smr", action="append", default=[], metavar="PRESET=DIR",
                   help="IMSL runs without SMR on PRESET (DIR/seed*/metrics.json): adds the imsl/smr rows' "
                        "paired difference to them (repeatable)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    if args.command == "deltas":
        pairs = [item.partition("=") for item in args.without_smr]
        if any(not sep or not folder for _, sep, folder in pairs):
            ap.error("--without-smr takes PRESET=DIR")
        text = deltas_table(args.folder, {preset: Path(folder) for preset, _, folder in pairs})
    elif args.command == "write":
        write_folders(args.output, args.preset or PRESETS, args.source or SOURCES, args.parsing_checkpoint)
        return 0
    else:
        text = iou_table(args.preset or PRESETS, args.source or SOURCES, args.parsing_checkpoint, args.limit)
    print(text)
    if args.write:
        replace_block(args.write, args.command, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
