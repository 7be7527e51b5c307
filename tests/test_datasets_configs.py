"""configs/datasets/*.yaml: valid run configs naming a registered dataset and its own protocols."""
from __future__ import annotations

from pathlib import Path

import pytest

from reidkit.config import resolve
from reidkit.registry import DATASETS

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "datasets").glob("*.yaml"))
PROTOCOLS = {
    "sysu_mm01": {"all-search", "indoor-search", "all-search-multishot", "indoor-search-multishot"},
    "regdb": {"visible-to-thermal", "thermal-to-visible"},
    "llcm": {"visible-to-infrared", "infrared-to-visible"},
    "rgbnt201": set(),
}


def test_one_config_per_official_dataset():
    assert {p.stem for p in CONFIGS} == set(PROTOCOLS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_resolves(path):
    cfg = resolve(config_file=path)
    assert cfg.data.dataset == path.stem and path.stem in DATASETS.names()
    assert (cfg.data.height, cfg.data.width) == (288, 144)
    assert set(cfg.eval.protocols) == PROTOCOLS[path.stem]
