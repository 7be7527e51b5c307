"""``data check`` back end: the report, the warnings against official counts, the rendering, clear errors."""
from __future__ import annotations

import json

import pytest
from rich.console import Console
from test_datasets_regdb import write_regdb
from test_datasets_sysu_mm01 import TEST_IMAGES, write_sysu

from reidkit.data.check import check_dataset, compare_counts, render_check
from reidkit.data.datasets.base import DatasetError
from reidkit.registry import RegistryError


def test_report_shape_and_mismatch_warnings(tmp_path):
    root = write_regdb(tmp_path / "RegDB")
    report, warnings = check_dataset("regdb", str(root), trial=2)
    json.dumps(report)  # the --json document is plain JSON
    assert set(report) == {"dataset", "root", "train", "protocols", "notes"}
    assert report["dataset"] == "regdb" and report["root"] == str(root)
    assert report["train"]["visible"] == {"images": 4, "ids": 2}
    assert report["protocols"]["thermal-to-visible"] == {"query": 4, "gallery": 4, "trials": 1}
    assert "train/visible: 4 images found, official 2,060" in warnings
    assert "protocol visible-to-thermal: 4 gallery images per trial found, official 2,060" in warnings
    assert len(warnings) == 8  # 2 modalities x (images, ids) + 2 protocols x (query, gallery)


def test_matching_counts_give_no_warning():
    report = {"train": {"visible": {"images": 5, "ids": 2}},
              "protocols": {"p": {"query": 3, "gallery": 2, "trials": 10}}}
    official = {"train": {"visible": {"images": 5, "ids": 2}}, "protocols": {"p": {"query": 3, "trials": 10}}}
    assert compare_counts(report, official) == []
    missing = compare_counts({"train": {}, "protocols": {}}, official)
    assert missing[0] == "train/visible: nothing found (official: 5 images, 2 identities)"


def test_render_shows_counts_notes_and_warnings(tmp_path):
    images = {pid: {cam: 2 for cam in range(1, 7)} for pid in (1, 2, 3)} | TEST_IMAGES
    report, warnings = check_dataset("sysu_mm01", str(write_sysu(tmp_path / "SYSU-MM01", images)))
    console = Console(record=True, width=140)
    console.print(render_check(report, warnings))
    text = console.export_text()
    for expected in ("training split", "infrared", "22,258", "all-search", "3,803", "301",
                     "gallery sampler: seeded", "warning:"):
        assert expected in text, expected


def test_errors_name_what_was_expected(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        check_dataset("sysu_mm01", str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match="idx/"):
        check_dataset("regdb", str(tmp_path))
    with pytest.raises(RegistryError, match="did you mean 'regdb'"):
        check_dataset("regbd", str(tmp_path))
