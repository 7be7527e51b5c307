"""The backbone contract (reidkit.testing.check_backbone) on every registered backbone; timm stays optional."""
from __future__ import annotations

import subprocess
import sys

import pytest

from reidkit.registry import BACKBONES, RegistryError
from reidkit.testing import check_backbone


def _member_names() -> list[str]:
    """Every registered backbone; a family (``timm``) by its small example member."""
    names = []
    for name in BACKBONES.names():
        try:
            obj = BACKBONES.get(name)
        except RegistryError:  # broken (timm not installed): the test says why, or skips
            names.append(name)
            continue
        names.append(f"{name}:{obj.example}" if callable(getattr(obj, "member", None)) else name)
    return names


@pytest.mark.parametrize("name", _member_names())
def test_registered_backbone_meets_the_contract(name):
    if name.split(":")[0] == "timm":
        pytest.importorskip("timm")
    check_backbone(name)


@pytest.mark.parametrize("name", ["timm:test_resnet", "timm:test_convnext", "timm:test_vit2"])
def test_timm_cnns_and_pooling_variants_meet_the_contract(name):
    pytest.importorskip("timm")
    check_backbone(name)


def test_reidkit_works_without_timm():
    """With timm unimportable: reidkit and the other backbones import, and a timm name says what to install."""
    code = (
        "import sys; sys.modules['timm'] = None\n"
        "import reidkit, reidkit.models.agw, reidkit.testing\n"
        "from reidkit.registry import BACKBONES, RegistryError\n"
        "BACKBONES.get('resnet50-agw')\n"
        "try:\n"
        "    BACKBONES.get('timm:test_vit')\n"
        "except RegistryError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'reidkit[timm]'" in out
