"""resnet50-agw: non-local blocks at AGW's positions, identity at initialisation, ImageNet files unchanged,
every built-in method on it, export (all CPU, small images)."""
from __future__ import annotations

import logging

import pytest
import torch
import torchvision

from reidkit.config import ModelConfig
from reidkit.models.agw import AGWBackbone, NonLocalStage, resnet50_agw
from reidkit.models.backbones import resnet50
from reidkit.models.nonlocal_block import NonLocalBlock
from reidkit.models.weights import WeightsError
from reidkit.registry import BACKBONES, METHODS
from reidkit.testing import check_export, check_method

MODS = ("visible", "infrared")
BUILTIN_METHODS = [n for n in METHODS.names() if METHODS.entry(n).value.startswith("reidkit_methods.")]


def images(n: int = 2, h: int = 64, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def imagenet_like_file(tmp_path_factory):
    """A torchvision ResNet-50 state dict (random weights, ImageNet's layout and names, with fc)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return path


# -- the non-local block ---------------------------------------------------------------------------------
def test_nonlocal_block_is_the_identity_at_initialisation():
    block = NonLocalBlock(16)
    x = torch.randn(2, 16, 6, 3)
    for mode in (block.train, block.eval):
        mode()
        assert torch.equal(block(x), x)
    assert block.inter_channels == 1  # AGW's released code: reduc_ratio // reduc_ratio


@pytest.mark.parametrize("inter", [1, 4])
def test_nonlocal_block_computes_agws_dot_product_form(inter):
    torch.manual_seed(0)
    block = NonLocalBlock(8, inter_channels=inter).eval()
    torch.nn.init.normal_(block.W[1].weight)
    torch.nn.init.normal_(block.W[1].bias)
    x = torch.randn(2, 8, 5, 3)
    b, n = 2, 15
    theta = block.theta(x).view(b, inter, n).permute(0, 2, 1)
    phi = block.phi(x).view(b, inter, n)
    g = block.g(x).view(b, inter, n).permute(0, 2, 1)
    y = torch.matmul(torch.matmul(theta, phi) / n, g).permute(0, 2, 1).reshape(b, inter, 5, 3)
    assert torch.allclose(block(x), x + block.W(y), atol=1e-5)


# -- the architecture ------------------------------------------------------------------------------------
def test_nonlocal_blocks_sit_after_the_last_blocks_of_layer2_and_layer3():
    model = resnet50_agw(ModelConfig(), MODS)
    assert isinstance(model, AGWBackbone) and model.feat_dim == 2048
    assert isinstance(model.layer2, NonLocalStage) and sorted(model.layer2.nonlocal_blocks) == ["2", "3"]
    assert isinstance(model.layer3, NonLocalStage) and sorted(model.layer3.nonlocal_blocks) == ["3", "4", "5"]
    assert isinstance(model.layer1, torch.nn.Sequential) and isinstance(model.layer4, torch.nn.Sequential)
    assert model.layer2.nonlocal_blocks["2"].channels == 512 and model.layer3.nonlocal_blocks["5"].channels == 1024
    assert BACKBONES.get("resnet50-agw") is resnet50_agw


def test_stems_follow_the_config():
    assert sorted(resnet50_agw(ModelConfig(), MODS, stems="per-modality").stems) == sorted(MODS)
    assert list(resnet50_agw(ModelConfig(), MODS).stems) == ["shared"]


def test_reset_parameters_keeps_the_blocks_identities():
    model = resnet50_agw(ModelConfig(), ("visible",))
    model.reset_parameters()
    assert all(m.W[1].weight.abs().sum() == 0 for m in model.modules() if isinstance(m, NonLocalBlock))


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="unknown backbone overrides"):
        resnet50_agw(ModelConfig(), MODS, non_local=True)


# -- weights ---------------------------------------------------------------------------------------------
def test_imagenet_file_loads_unchanged_and_matches_resnet50(imagenet_like_file, caplog):
    cfg = ModelConfig(weights=str(imagenet_like_file))
    with caplog.at_level(logging.INFO):
        agw = resnet50_agw(cfg, MODS, stems="per-modality").eval()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "keep AGW's initialisation" in caplog.text
    source = torch.load(imagenet_like_file)
    own = agw.state_dict()
    for m in MODS:
        assert torch.equal(own[f"stems.{m}.conv1.weight"], source["conv1.weight"])
    assert torch.equal(own["layer2.3.conv3.weight"], source["layer2.3.conv3.weight"])
    plain = resnet50(cfg, MODS, stems="per-modality").eval()
    with torch.no_grad():
        for m in MODS:  # the non-local blocks start as identities: AGW with ImageNet weights is ResNet-50
            assert torch.allclose(agw(images(), m)["feat"], plain(images(), m)["feat"], atol=1e-5)


def test_imagenet_name_reads_torchvisions_resnet50(monkeypatch, imagenet_like_file):
    from reidkit.models import agw

    asked = []
    monkeypatch.setattr(agw, "imagenet_state_dict",
                        lambda spec: asked.append(spec.imagenet) or torch.load(imagenet_like_file))
    model = resnet50_agw(ModelConfig(weights="imagenet"), MODS)
    assert asked == ["ResNet50_Weights"]
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"],
                       torch.load(imagenet_like_file)["layer1.0.conv1.weight"])


def test_own_state_dict_round_trips(tmp_path):
    torch.manual_seed(1)
    model = resnet50_agw(ModelConfig(), MODS, stems="per-modality").eval()
    torch.nn.init.normal_(model.layer3.nonlocal_blocks["4"].W[1].weight)
    path = tmp_path / "agw.pth"
    torch.save(model.state_dict(), path)
    again = resnet50_agw(ModelConfig(weights=str(path)), MODS, stems="per-modality").eval()
    with torch.no_grad():
        assert torch.equal(again(images(), "infrared")["feat"], model(images(), "infrared")["feat"])


def test_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(WeightsError, match="does not fit backbone resnet50-agw"):
        resnet50_agw(ModelConfig(weights=str(path)), MODS)


# -- methods and export ----------------------------------------------------------------------------------
AGW_RUN = ["model.backbone=resnet50-agw", "model.weights=none", "model.stems=per-modality"]
# A randomly initialised ResNet-50 (plain resnet50 as well) puts the tiny dataset's images in one DBSCAN
# cluster, and a contrastive loss over one centroid is exactly 0 (no gradient): CHCR keeps its outliers as
# instance clusters here. dc-baseline's SGD at lr 0.1 (AGW's recipe, meant for ImageNet weights) drives a
# random ResNet-50's features to non-finite distances within two steps: Adam at 3.5e-4 here.
METHOD_ARGS = {"chcr": ["method_args.outliers=instances"],
               "dc-baseline": ["optim.optimizer=adam", "optim.lr=3.5e-4"]}


@pytest.mark.parametrize("name", BUILTIN_METHODS)
def test_every_builtin_method_trains_on_agw(name, tmp_path):
    results = check_method(METHODS.get(name), tmp_path, overrides=[*AGW_RUN, *METHOD_ARGS.get(name, [])])
    assert results


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_reidkit_export_exports_an_agw_model(fmt, tiny_root, tmp_path, capsys):
    from reidkit.cli import main

    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    sets = ["data.dataset=generic", f"data.root={tiny_root}", "data.height=32", "data.width=16",
            "data.batch_size=8", "data.instances=2", "data.workers=0", "optim.epochs=1", "optim.iterations=1",
            *AGW_RUN, *METHOD_ARGS["dc-baseline"]]
    assert main(["run", "--method", "dc-baseline", *[a for s in sets for a in ("--set", s)],
                 "--output", str(run)]) == 0
    out = tmp_path / f"agw.{'pt' if fmt == 'torchscript' else 'onnx'}"
    check_export(run / "checkpoints" / "last.pt", out, fmt, images(3, 32, 16))
