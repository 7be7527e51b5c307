"""Tables of the IMSL ladder (benchmarks/imsl_ladder.yaml), copied from the runs' metrics.json.

    .venv/bin/python benchmarks/imsl_ladder.py intra runs/imsl-ladder     # intra-modality diagnostic
    .venv/bin/python benchmarks/imsl_ladder.py silhouette standard --write benchmarks/imsl.md
    .venv/bin/python benchmarks/imsl_ladder.py tables runs/imsl-ladder    # print the tables
    .venv/bin/python benchmarks/imsl_ladder.py tables runs/imsl-ladder --write docs/notes/imsl-record.md

``silhouette`` scores SMR's built-in shape estimate (``reidkit_methods.imsl.smr.silhouette``) against the
synthetic part masks (foreground = any part): IoU per modality on 200 training images each.

``intra`` restores each finished run's last checkpoint and scores same-modality retrieval (query and
gallery from one modality, same identity and camera skipped) into ``intra.json`` beside its metrics.json:
a diagnostic of whether a model learned identity at all, separately from crossing the modality gap.

With ``--write FILE`` the text between ``<!-- <command>:begin -->`` and ``<!-- <command>:end -->`` in FILE
(command = ladder for the tables, silhouette for the IoU table) is replaced; the rest is left alone. Numbers are percentages of the fractions in the runs'
files: mean over the finished seeds, +- the sample standard deviation when there are at least two.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from reidkit.bench.results import (
    Row,
    Stat,
    collect_runs,
    directed_pairs,
    final_epoch_value,
    group_rows,
    protocols,
)

RUNGS = ("kmeans", "mmc", "mmc+mil", "mmc+mil+smr", "mmc+mil+smr+mmre", "smr-silhouette")
SUPERVISED = "dc-baseline"


def pct(stat: Stat) -> str:
    if stat.mean is None:
        return "-"
    text = f"{100 * stat.mean:.1f}"
    return text + (f" ± {100 * stat.std:.1f}" if stat.std is not None else "")


def mean_over_protocols(row: Row, names: list[str], key: str) -> Stat:
    """Per run, the mean of ``key`` over the protocols; then the statistics over runs."""
    values = []
    for r in row.done:
        results = r.metrics.get("results", {})
        got = [results[p][key] for p in names if p in results and key in results[p]]
        if len(got) == len(names):
            values.append(statistics.fmean(got))
    return Stat(tuple(values))


def intra_map(row: Row) -> Stat:
    """Per run, the mean same-modality mAP of its intra.json (written by ``intra``)."""
    values = []
    for r in row.done:
        path = r.dir / "intra.json"
        if path.is_file():
            data = json.loads(path.read_text())
            values.append(statistics.fmean(v["mAP"] for v in data.values()))
    return Stat(tuple(values))


def score_intra(folder: Path) -> None:
    """Write ``intra.json`` (same-modality rank-1 / mAP per modality) for every finished run lacking one."""
    from reidkit.data.datasets.base import Protocol
    from reidkit.engine.run import restore_checkpoint
    from reidkit.evaluation import evaluate

    _, records = collect_runs(folder)
    for r in records:
        ckpt = r.dir / "checkpoints" / "last.pt"
        if r.status != "done" or (r.dir / "intra.json").is_file() or not ckpt.is_file():
            continue
        restored = restore_checkpoint(ckpt, device="cpu")
        trainer = restored.trainer()
        test = {s.path: s for p in restored.dataset.protocols.values() for s in [*p.query, *p.gallery_pool]}
        out = {}
        for m in restored.dataset.modalities:
            samples = sorted((s for s in test.values() if s.modality == m), key=lambda s: s.path)
            protocol = Protocol.single(f"{m}-to-{m}", samples, samples, exclusion="same-id-same-camera")
            result = evaluate(trainer.features_fn, protocol)
            out[protocol.name] = {"rank1": result["rank1"], "mAP": result["mAP"]}
        (r.dir / "intra.json").write_text(json.dumps(out, indent=1))
        print(r.id, {k: round(v["mAP"], 4) for k, v in out.items()}, flush=True)


def score_silhouette(preset: str, sizes=((64, 32), (128, 64)), per_modality: int = 200) -> str:
    """Markdown table: IoU of the silhouette estimate with the mask foreground, per modality and size."""
    import numpy as np
    import torch
    from PIL import Image

    from reidkit.config import DataConfig
    from reidkit.data.datasets.synthetic import SyntheticDataset
    from reidkit.data.transforms import test_transform
    from reidkit_methods.imsl.smr import silhouette

    ds = SyntheticDataset.from_config(DataConfig(), SyntheticDataset.Config(preset=preset))
    rng = np.random.default_rng(0)
    picks = {m: rng.choice([i for i, s in enumerate(ds.train) if s.modality == m], per_modality, replace=False)
             for m in ds.modalities}
    version = json.loads((Path(ds.root) / "synthetic.json").read_text()).get("version", "?")
    lines = [f"| preset (generator v) | size | {' | '.join(ds.modalities)} |",
             "|" + "---|" * (2 + len(ds.modalities))]
    for h, w in sizes:
        cells = []
        for m in ds.modalities:
            images = torch.stack([test_transform((h, w))(Image.open(ds.train[i].path).convert("RGB"))
                                  for i in picks[m]])
            estimate = silhouette(images)[:, 0] > 0  # white (person) is > 0 after normalisation
            truth = torch.from_numpy(np.stack([np.array(Image.open(ds.train[i].mask_path).resize(
                (w, h), Image.NEAREST)) > 0 for i in picks[m]]))
            inter = (estimate & truth).flatten(1).sum(1).float()
            union = (estimate | truth).flatten(1).sum(1).float().clamp(min=1)
            cells.append(f"{(inter / union).mean():.2f}")
        lines.append(f"| {preset} (v{version}) | {h} x {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def order(rows: list[Row]) -> list[Row]:
    def rank(row: Row) -> tuple[int, str]:
        if row.method == SUPERVISED:
            return (len(RUNGS) + 1, "")
        return (RUNGS.index(row.variant) if row.variant in RUNGS else len(RUNGS), row.variant or "")
    return sorted(rows, key=rank)


def label(row: Row) -> str:
    return f"{SUPERVISED} (supervised)" if row.method == SUPERVISED else (row.variant or row.method)


def dataset_tables(dataset: str, rows: list[Row]) -> list[str]:
    rows = order(rows)
    names = protocols(rows)
    pairs = directed_pairs(names)
    supervised = next((r for r in rows if r.method == SUPERVISED and r.done), None)
    sup_map = mean_over_protocols(supervised, pairs, "mAP").mean if supervised else None
    out = [f"#### `{dataset}`", ""]
    head = "| rung | seeds | " + " | ".join(f"{p} mAP" for p in names) + " |"
    out += [head, "|" + "---|" * (2 + len(names))]
    for row in rows:
        cells = [pct(row.metric(p, "mAP")) for p in names]
        out.append(f"| {label(row)} | {len(row.done)} | " + " | ".join(cells) + " |")
    out += ["", "| rung | seeds | " + " | ".join(f"{p} R1" for p in names) + " |", "|" + "---|" * (2 + len(names))]
    for row in rows:
        cells = [pct(row.metric(p, "rank1")) for p in names]
        out.append(f"| {label(row)} | {len(row.done)} | " + " | ".join(cells) + " |")
    out += ["", "| rung | seeds | mean mAP (pairs) | % of supervised | mean R1 (pairs) | same-modality mAP "
                "| final ARI | final NMI | clusters (last epoch) | wall time (min) |", "|" + "---|" * 10]
    for row in rows:
        m = mean_over_protocols(row, pairs, "mAP")
        supervised_row = row.method == SUPERVISED
        share = f"{100 * m.mean / sup_map:.0f} %" if m.mean is not None and sup_map else "-"
        clusters = Stat(tuple(v for v in (final_epoch_value(r.metrics, "clusters") for r in row.done)
                              if v is not None))
        nmi = Stat(tuple(v for v in (final_epoch_value(r.metrics, "label_nmi") for r in row.done) if v is not None))
        wall = row.wall_time()
        cells = [label(row), str(len(row.done)), pct(m), share, pct(mean_over_protocols(row, pairs, "rank1")),
                 pct(intra_map(row)), "-" if supervised_row else pct(row.final_ari()),
                 "-" if supervised_row else pct(nmi),
                 "-" if supervised_row or clusters.mean is None else f"{clusters.mean:.0f}",
                 "-" if wall.mean is None else f"{wall.mean / 60:.1f}"]
        out.append("| " + " | ".join(cells) + " |")
    pending = sum(1 for row in rows for r in row.runs if r.status != "done")
    if pending:
        done = sum(len(row.done) for row in rows)
        out += ["", f"{done} runs finished, {pending} of this suite's runs not run (or not finished)."]
    return out + [""]


def tables(folder: Path) -> str:
    _, records = collect_runs(folder)
    lines = []
    for dataset, rows in group_rows(records).items():
        lines += dataset_tables(dataset, rows)
    commits = sorted({(r.env or {}).get("git_commit", "?")[:8] for r in records if r.status == "done"})
    lines.append(f"Runs read from `{folder}`; code commits: {', '.join(commits) or '-'}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("tables", "intra", "silhouette"))
    parser.add_argument("folder", type=Path, help="the bench output folder (reidkit bench --output), "
                                                  "or the synthetic preset for silhouette")
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace (module docstring)")
    args = parser.parse_args(argv)
    if args.command == "intra":
        score_intra(args.folder)
        return 0
    if args.command == "silhouette":
        text, section = score_silhouette(str(args.folder)), "silhouette"
    else:
        text, section = tables(args.folder), "ladder"
    if not args.write:
        print(text)
        return 0
    return write_section(args.write, section, text)


def write_section(path: Path, section: str, text: str) -> int:
    """Replace the text between ``<!-- section:begin -->`` and ``<!-- section:end -->`` in ``path``."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    doc = path.read_text()
    if begin not in doc or end not in doc:
        print(f"{path} has no {begin} ... {end} section", file=sys.stderr)
        return 1
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
