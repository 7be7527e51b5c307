"""Published numbers (``benchmarks/reference.yaml``): literature anchors shown apart from measured rows.

File format::

    entries:
      - method: PGM
        venue: CVPR'23
        setting: unsupervised            # or supervised
        results:                         # <dataset>/<protocol>: [Rank-1, mAP, mINP] in %, null = not reported
          sysu_mm01/all-search: [56.29, 51.36, 35.06]
        note: last epoch                 # optional
        source: "github.com/zesenwu23/USL-VI-ReID, training_logs_example/"
        provenance: "[log]"              # how the number was obtained (tags below)

Provenance tags fall in three kinds: re-read from a primary artefact (``[log]``, ``[readme]``,
``[verified: ...]``), recalled and unverified (``[paper, unverified]``, ``[memory – verify ...]``), and
other (an abstract, a secondary quote).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reidkit.config import ConfigError

KINDS = {
    "re-read": "re-read from a log, README or model zoo",
    "recalled": "recalled from a paper or from memory, not re-read (provisional)",
    "other": "other sources (abstract, secondary quote)",
}
_FIELDS = ("method", "venue", "setting", "results", "note", "source", "provenance")


@dataclass(frozen=True)
class ReferenceResult:
    method: str
    venue: str
    setting: str
    dataset: str
    protocol: str
    rank1: str | None  # as published (trailing zeros kept); float() for arithmetic
    mAP: str | None
    mINP: str | None
    note: str
    source: str
    provenance: str

    @property
    def kind(self) -> str:
        return provenance_kind(self.provenance)


def provenance_kind(tag: str) -> str:
    """``re-read``, ``recalled`` or ``other`` for a provenance tag."""
    t = tag.strip().lower()
    if t.startswith(("[log", "[readme", "[verified")):
        return "re-read"
    if t.startswith(("[paper", "[memory")):
        return "recalled"
    return "other"


def _number(text: Any, where: str) -> str | None:
    """The number as written in the file (so 76.40 stays 76.40), checked to be a percentage."""
    if text in (None, "", "null", "~", "Null", "NULL"):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 <= value <= 100:
        raise ConfigError(f"{where}: expected a percentage in [0, 100] or null, got {text!r}")
    return str(text)


def load_reference(path: str | Path) -> list[ReferenceResult]:
    """Every (method, dataset, protocol) number of the file, validated."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"reference file not found: {path}")
    try:
        # every scalar as its text: numbers keep the digits they were published with
        data = yaml.load(path.read_text(), Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a top-level 'entries' list")
    out = []
    for i, e in enumerate(entries):
        where = f"{path}: entries[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = sorted(set(e) - set(_FIELDS))
        missing = [k for k in ("method", "results", "source", "provenance") if not e.get(k)]
        if unknown or missing:
            raise ConfigError(f"{where}: " + (f"unknown keys {unknown}" if unknown else f"missing {missing}"))
        if not isinstance(e["results"], dict):
            raise ConfigError(f"{where}.results: expected a mapping of '<dataset>/<protocol>' "
                              "to [R1, mAP, mINP]")
        for key, values in e["results"].items():
            if "/" not in str(key) or not isinstance(values, list) or not 1 <= len(values) <= 3:
                raise ConfigError(f"{where}.results.{key}: expected '<dataset>/<protocol>: [R1, mAP, mINP]'")
            r1, m_ap, m_inp = [*(_number(v, f"{where}.results.{key}") for v in values), None, None][:3]
            dataset, protocol = str(key).split("/", 1)
            out.append(ReferenceResult(str(e["method"]), str(e.get("venue", "")), str(e.get("setting", "")),
                                       dataset, protocol, r1, m_ap, m_inp, str(e.get("note", "") or ""),
                                       str(e["source"]), str(e["provenance"])))
    return out


def select(results: list[ReferenceResult], datasets: set[str]) -> tuple[list[ReferenceResult], bool]:
    """The results on ``datasets``; all of them (and False) when none is on those datasets."""
    chosen = [r for r in results if r.dataset in datasets]
    return (chosen, True) if chosen else (list(results), False)
