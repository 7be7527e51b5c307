"""timm:<model> backbones: the ViT and CNN mappings, position embeddings at the run's size, the three weight
layouts, the registry family, every built-in method on a tiny ViT, export (CPU, tiny models, no download)."""
from __future__ import annotations

import pytest
import torch
import torchvision

timm = pytest.importorskip("timm")

from reidkit.config import ModelConfig
from reidkit.models.timm_backbone import TIMM, timm_backbone
from reidkit.models.timm_vit import TimmViTBackbone, TokenPooling, stage_sizes
from reidkit.models.weights import WeightsError
from reidkit.registry import BACKBONES, METHODS, RegistryError
from reidkit.testing import check_export, check_method

MODS = ("visible", "infrared")
BUILTIN_METHODS = [n for n in METHODS.names() if METHODS.entry(n).value.startswith("reidkit_methods.")]


def images(n: int = 2, h: int = 64, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def saved(model: torch.nn.Module, path) -> str:
    torch.save(model.state_dict(), path)
    return str(path)


def timm_features(model, x: torch.Tensor) -> torch.Tensor:
    """timm's own pooled feature (before the classifier)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


# -- the registry family --------------------------------------------------------------------------------
def test_timm_names_resolve_through_the_family():
    builder = BACKBONES.get("timm:test_vit")
    assert builder.func is timm_backbone and builder.args == ("test_vit",)
    assert BACKBONES.get("timm") is TIMM and "timm" in BACKBONES.names()


@pytest.mark.parametrize("name, match", [("timm:vit_smal_patch16_224", "did you mean timm:vit_small_patch16_224"),
                                         ("timm:hf-hub:org/model", "nothing is downloaded"),
                                         ("timm:", "names no member"), ("resnet50:x", "not a family")])
def test_bad_family_names_are_registry_errors(name, match):
    with pytest.raises(RegistryError, match=match):
        BACKBONES.get(name)


def test_the_family_itself_is_not_a_backbone():
    with pytest.raises(TypeError, match="timm:<model name>"):
        TIMM(ModelConfig(), MODS)


# -- the ViT mapping ------------------------------------------------------------------------------------
def test_stage_sizes_cut_the_depth_in_four():
    assert stage_sizes(12) == [3, 3, 3, 3] and stage_sizes(14) == [4, 4, 3, 3] and stage_sizes(6) == [2, 2, 1, 1]
    with pytest.raises(ValueError):
        stage_sizes(3)


def test_vit_maps_patch_embedding_per_modality_and_blocks_to_four_stages():
    model = timm_backbone("test_vit", ModelConfig(), MODS, stems="per-modality")
    assert isinstance(model, TimmViTBackbone) and model.feat_dim == 64
    assert sorted(model.stems) == sorted(MODS)
    assert [len(getattr(model, f"layer{i}").blocks) for i in range(1, 5)] == [2, 2, 1, 1]
    assert isinstance(model.layer4.norm, torch.nn.LayerNorm) and isinstance(model.pool, TokenPooling)
    assert model.pool.mode == "token"
    tokens = model.forward_stem(images(), "visible")
    assert tokens.shape == (2, 64, 1, 1 + 4 * 2)  # [B, D, 1, class token + 4 x 2 patches] at 64 x 32


@pytest.mark.parametrize("name, size", [("vit_tiny_patch16_224", (128, 64)), ("test_vit2", (64, 32))])
def test_vit_runs_at_the_run_size_as_timm_does(name, size, tmp_path):
    """Same weights, same features as timm's own dynamic-size forward: position embeddings resampled as
    timm resamples them (14 x 14 -> 8 x 4 for vit_tiny at 128 x 64); test_vit2 pools the mean of its patch
    tokens with fc_norm and has register tokens."""
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True).eval()
    path = saved(reference, tmp_path / "w.pth")
    model = timm_backbone(name, ModelConfig(weights=path), MODS).eval()
    x = images(2, *size)
    with torch.no_grad():
        assert torch.allclose(model(x, "visible")["pool"], timm_features(reference, x), atol=1e-5)


def test_non_square_position_table_is_kept(tmp_path):
    """A ViT trained on 256 x 128 person images (LUPerson style) keeps its 16 x 8 table."""
    reference = timm.create_model("test_vit", pretrained=False, num_classes=0, img_size=(256, 128),
                                  dynamic_img_size=True).eval()
    model = timm_backbone("test_vit", ModelConfig(weights=saved(reference, tmp_path / "w.pth")), MODS).eval()
    assert model.grid_size == (16, 8) and model.pos_embed.shape == (1, 1 + 128, 64)
    x = images(1, 256, 128)
    with torch.no_grad():
        assert torch.allclose(model(x, "infrared")["pool"], timm_features(reference, x), atol=1e-5)


def test_torchvision_vit_file_loads_under_timm_names(tmp_path):
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    tv = VisionTransformer(image_size=160, patch_size=16, num_layers=6, num_heads=2, hidden_dim=64, mlp_dim=192)
    tv.heads = torch.nn.Identity()
    tv.eval()
    model = timm_backbone("test_vit", ModelConfig(weights=saved(tv, tmp_path / "tv.pth")), MODS).eval()
    x = images(2, 160, 160)
    with torch.no_grad():
        assert torch.allclose(model(x, "visible")["pool"], tv(x), atol=1e-4)


def test_own_state_dict_round_trips(tmp_path):
    torch.manual_seed(3)
    model = timm_backbone("test_vit", ModelConfig(), MODS, stems="per-modality").eval()
    again = timm_backbone("test_vit", ModelConfig(weights=saved(model, tmp_path / "own.pth")), MODS,
                          stems="per-modality").eval()
    with torch.no_grad():
        assert torch.equal(again(images(), "infrared")["feat"], model(images(), "infrared")["feat"])


# -- the CNN mapping ------------------------------------------------------------------------------------
def test_torchvision_resnet_file_loads_into_timm_resnet(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    model = timm_backbone("resnet18", ModelConfig(weights=saved(tv, tmp_path / "r18.pth"), pooling="avg",
                                                  last_stride=2), MODS, stems="per-modality").eval()
    assert sorted(model.stems) == sorted(MODS) and model.feat_dim == 512
    tv.fc = torch.nn.Identity()
    with torch.no_grad():
        assert torch.allclose(model(images(), "visible")["pool"], tv(images()), atol=1e-5)


def test_last_stride_one_keeps_the_last_stage_resolution():
    stride1 = timm_backbone("test_resnet", ModelConfig(last_stride=1), MODS)
    stride2 = timm_backbone("test_resnet", ModelConfig(last_stride=2), MODS)
    x = stride1.forward_stem(images(), "visible")
    assert stride1.forward_layers(x).shape[-2:] == (4, 2)
    assert stride2.forward_layers(stride2.forward_stem(images(), "visible")).shape[-2:] == (2, 1)


# -- weights that cannot be used ------------------------------------------------------------------------
def test_imagenet_is_refused_without_download():
    with pytest.raises(WeightsError, match="never download"):
        timm_backbone("test_vit", ModelConfig(weights="imagenet"), MODS)


def test_file_of_another_model_is_refused(tmp_path):
    other = timm.create_model("test_vit3", pretrained=False, num_classes=0)
    with pytest.raises(WeightsError, match="does not fit"):
        timm_backbone("test_vit", ModelConfig(weights=saved(other, tmp_path / "o.pth")), MODS)


# -- methods and export ---------------------------------------------------------------------------------
VIT_RUN = ["model.backbone=timm:test_vit", "model.weights=none", "model.stems=per-modality", "data.height=64",
           "data.width=32"]


@pytest.mark.parametrize("name", BUILTIN_METHODS)
def test_every_builtin_method_trains_on_a_tiny_vit(name, tmp_path):
    assert check_method(METHODS.get(name), tmp_path, overrides=VIT_RUN)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_reidkit_export_exports_a_vit_model(fmt, tiny_root, tmp_path):
    from reidkit.cli import main

    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    sets = ["data.dataset=generic", f"data.root={tiny_root}", "data.batch_size=8", "data.instances=2",
            "data.workers=0", "optim.epochs=1", "optim.iterations=1", *VIT_RUN]
    assert main(["run", "--method", "chcr", *[a for s in sets for a in ("--set", s)], "--output", str(run)]) == 0
    out = tmp_path / f"vit.{'pt' if fmt == 'torchscript' else 'onnx'}"
    check_export(run / "checkpoints" / "last.pt", out, fmt, images(3, 64, 32))
