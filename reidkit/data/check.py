"""``reidkit data check NAME ROOT``: load a dataset folder and compare what is there with the official counts.

:func:`check_dataset` returns the ``--json`` document (``{"dataset", "root", "train": {modality:
{"images", "ids"}}, "protocols": {name: {"query", "gallery", "trials"}}, "notes"}``, gallery = one trial's
gallery size; ``notes`` = what the loader wants the user to know, e.g. which gallery sampler it chose) and
the mismatch warnings; :func:`render_check` turns both into rich tables for the CLI. A wrong root raises
``DatasetError`` whose message says what was expected there.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from reidkit.dataset_args import load_from_settings
from reidkit.registry import DATASETS

_FIELDS = {"train": ("images", "ids"), "protocols": ("query", "gallery", "trials")}


def official_counts(name: str) -> dict[str, Any]:
    return dict(getattr(DATASETS.get(name), "official_counts", {}) or {})


def check_dataset(name: str, root: str, **settings: Any) -> tuple[dict[str, Any], list[str]]:
    """Load dataset ``name`` from ``root`` with extra settings: the dataset's options (e.g. ``trial=3``,
    as ``dataset_args``), other ``data`` fields, or ``data`` / ``dataset_args`` mappings.

    Returns the report and one warning per count that differs from (or is missing against) the published
    figure. Raises ``DatasetError`` for a wrong or incomplete folder, ``RegistryError`` for an unknown name,
    ``ConfigError`` for a setting the dataset does not take.
    """
    cls = DATASETS.get(name)
    dataset = load_from_settings(name, {**settings, "data": {**settings.get("data", {}), "root": str(root)}})
    report = dataset.check_report()
    roles = getattr(dataset, "roles", {})
    report["notes"] = [*getattr(dataset, "notes", []),
                       *([f"modality roles: {', '.join(f'{m} = {r}' for m, r in roles.items())}"] if roles else [])]
    return report, compare_counts(report, getattr(cls, "official_counts", {}) or {})


_WORDS = {"images": "images", "ids": "identities", "query": "query images",
          "gallery": "gallery images per trial", "trials": "trials"}


def compare_counts(report: Mapping[str, Any], official: Mapping[str, Any]) -> list[str]:
    """Warnings for every official count the report does not match."""
    warnings = []
    for section, fields in _FIELDS.items():
        for key, want in (official.get(section) or {}).items():
            where = f"train/{key}" if section == "train" else f"protocol {key}"
            found = report.get(section, {}).get(key)
            if found is None:
                expected = ", ".join(f"{want[f]:,} {_WORDS[f]}" for f in fields if f in want)
                warnings.append(f"{where}: nothing found (official: {expected})")
                continue
            for field in fields:
                if field in want and found.get(field) != want[field]:
                    warnings.append(f"{where}: {found.get(field, 0):,} {_WORDS[field]} found, "
                                    f"official {want[field]:,}")
    return warnings


def _cell(found: Any, want: Any) -> Text:
    if want is None:
        return Text(f"{found:,}" if isinstance(found, int) else str(found))
    ok = found == want
    return Text(f"{found:,}", style="green" if ok else "bold red")


def render_check(report: Mapping[str, Any], warnings: list[str]) -> Group:
    """Header, two tables (training split; protocols) with the official counts beside, notes and warnings."""
    official = official_counts(report["dataset"]) if report.get("dataset") in DATASETS.names() else {}
    header = Text(f"{report['dataset']} at {report['root']}", style="bold")
    train = Table(title="training split", title_justify="left")
    for column in ("modality", "images", "official", "ids", "official"):
        train.add_column(column, justify="left" if column == "modality" else "right")
    for modality, counts in report.get("train", {}).items():
        want = (official.get("train") or {}).get(modality, {})
        train.add_row(modality, _cell(counts["images"], want.get("images")), _official(want.get("images")),
                      _cell(counts["ids"], want.get("ids")), _official(want.get("ids")))
    protocols = Table(title="protocols (gallery = one trial)", title_justify="left")
    longest = max((len(n) for n in report.get("protocols", {})), default=8)
    protocols.add_column("protocol", no_wrap=True, min_width=longest)
    for column in ("query", "official", "gallery", "official", "trials", "official"):
        protocols.add_column(column, justify="right")
    for name, counts in report.get("protocols", {}).items():
        want = (official.get("protocols") or {}).get(name, {})
        row = [name]
        for field in _FIELDS["protocols"]:
            row += [_cell(counts[field], want.get(field)), _official(want.get(field))]
        protocols.add_row(*row)
    lines = [Text(f"note: {n}", style="dim") for n in report.get("notes", [])]
    lines += [Text(f"warning: {w}", style="yellow") for w in warnings]
    if not warnings and official:
        lines.append(Text("all official counts match", style="green"))
    return Group(header, train, protocols, *lines)


def _official(value: Any) -> str:
    return "-" if value is None else f"{value:,}"
