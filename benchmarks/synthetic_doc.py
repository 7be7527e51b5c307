"""Fill the generated sections of docs/synthetic.md from the code and from calibration results.

The presets and knobs tables are read from ``reidkit.data.synthetic`` (so they cannot drift from the
generator); the calibration table from the JSON files that ``benchmarks/synthetic_calibration.py --json``
writes. Sections sit between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers (a bare placeholder
line ``NAME`` is replaced the first time).

    python benchmarks/synthetic_doc.py --calibration benchmarks/calibration/*.json \
        --tuning benchmarks/calibration/tuning/*.json
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "synthetic.md"


def presets_table() -> str:
    from reidkit.data.synthetic import PRESETS

    rows = ["| preset | modalities | cameras | aligned | train ids x shots | test ids x shots | train / test images |",
            "|---|---|---|---|---|---|---|"]
    for p in PRESETS.values():
        cams = ", ".join(f"{m}: {'/'.join(map(str, c))}" for m, c in p.cameras.items())
        train, test = sum(p.images("train").values()), sum(p.images("test").values())
        names = [m if p.renderer(m) == m else f"{m} (rendered {p.renderer(m)})" for m in p.modalities]
        rows.append(f"| `{p.name}` | {', '.join(names)} | {cams} | {'yes' if p.aligned else 'no'} | "
                    f"{p.train_ids} x {p.train_shots} | {p.test_ids} x {p.test_shots} | {train} / {test} |")
    return "\n".join(rows)


def knobs_table() -> str:
    from reidkit.data.synthetic import Knobs

    doc = inspect.getdoc(Knobs) or ""
    help_of: dict[str, str] = {}
    current = None
    for line in doc.splitlines():
        m = re.match(r"\s*(\w+): (.*)", line)
        if m and m.group(1) in {f.name for f in dataclasses.fields(Knobs)}:
            current = m.group(1)
            help_of[current] = m.group(2)
        elif current and line.startswith("    ") and line.strip():
            help_of[current] += " " + line.strip()
        else:
            current = None
    rows = ["| knob | default | what it does |", "|---|---|---|"]
    for f in dataclasses.fields(Knobs):
        rows.append(f"| `{f.name}` | {f.default} | {help_of.get(f.name, '')} |")
    return "\n".join(rows)


def calibration_table(paths: list[Path]) -> str:
    rows = ["| preset | knobs | matcher | cross-modality mAP | cross R1 | intra-modality mAP | intra R1 | "
            "supervised steps |", "|---|---|---|---|---|---|---|---|"]
    names = {"hist_rgb": "(b) colour histogram (RGB, 6 stripes)", "hist_grey": "(b) intensity histogram (grey)",
             "random_default_bn": "(a) random init", "random_recalibrated_bn": "(a) random init, BN re-estimated",
             "supervised": "(c) supervised resnet-mini"}
    for path in paths:
        res = json.loads(path.read_text())
        knobs = ", ".join(f"{k}={v:g}" for k, v in res.get("knobs", {}).items()) or "defaults"
        for key, row in res["summary"].items():
            steps = res.get("iterations", "") if key == "supervised" else ""
            name = names.get(key, key)
            if key == "supervised" and res.get("from_run"):  # a reidkit run's model (--from-run)
                name = f"(c) supervised `{res['from_run']}` (reidkit run)"
            if res.get("inputs") == "masks":  # the matcher saw the part masks, not the images (--inputs masks)
                name = f"{name}, **on the masks**"
            rows.append(f"| {res['preset']} | {knobs} | {name} | {row['cross_mAP']:.3f} | "
                        f"{row['cross_rank1']:.3f} | {row['intra_mAP']:.3f} | {row['intra_rank1']:.3f} | {steps} |")
    return "\n".join(rows)


def tuning_table(paths: list[Path]) -> str:
    rows = ["| step | change | supervised steps | cross-modality mAP | cross R1 | intra-modality mAP | intra R1 |",
            "|---|---|---|---|---|---|---|"]
    docs = sorted((json.loads(p.read_text()) for p in paths), key=lambda d: d["label"].replace("'", ".~"))
    for d in docs:
        row = d["summary"]["supervised"]
        rows.append(f"| {d['label']} | {d['change']} | {d['iterations']} | {row['cross_mAP']:.3f} | "
                    f"{row['cross_rank1']:.3f} | {row['intra_mAP']:.3f} | {row['intra_rank1']:.3f} |")
    return "\n".join(rows)


def fill(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body}\n{end}"
    if begin in text:
        return re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.DOTALL)
    placeholder = name.upper()
    if placeholder not in text:
        raise SystemExit(f"{DOC}: neither markers nor the placeholder {placeholder} for section {name}")
    return text.replace(placeholder, block, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calibration", nargs="*", type=Path, default=[], help="calibration JSON files")
    ap.add_argument("--tuning", nargs="*", type=Path, default=[], help="tuning-step JSON files (label, change)")
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args()
    text = args.doc.read_text()
    text = fill(text, "calibration-presets-table", presets_table())
    text = fill(text, "calibration-knobs-table", knobs_table())
    if args.calibration:
        text = fill(text, "calibration-results", calibration_table(sorted(args.calibration)))
    if args.tuning:
        text = fill(text, "calibration-tuning", tuning_table(args.tuning))
    args.doc.write_text(text)


if __name__ == "__main__":
    main()
