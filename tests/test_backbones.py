"""Backbones: shapes, stems, mixed-modality forward, pooling, BN-neck, weights (all CPU, tiny inputs)."""
from __future__ import annotations

import logging
import urllib.error

import pytest
import torch
import torchvision

from reidkit.config import ModelConfig
from reidkit.models import weights
from reidkit.models.backbones import (
    RESNET50,
    ReIDBackbone,
    resnet18,
    resnet34,
    resnet50,
    resnet_mini,
)
from reidkit.models.neck import BNNeck
from reidkit.models.pooling import AvgPooling, GeMPooling
from reidkit.models.weights import WeightsError, imagenet_state_dict
from reidkit.registry import BACKBONES

MODS = ("visible", "infrared")
CFG = ModelConfig()


def images(n: int = 2, h: int = 64, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def torchvision_layout(model: ReIDBackbone, stem: str = "shared") -> dict[str, torch.Tensor]:
    """A backbone's weights renamed as a torchvision ResNet state dict (with a dummy classifier)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith(f"stems.{stem}."):
            out[key[len(f"stems.{stem}."):]] = value.clone()
        elif key.startswith("layer"):
            out[key] = value.clone()
    out["fc.weight"] = torch.zeros(10, model.feat_dim)
    out["fc.bias"] = torch.zeros(10)
    return out


# -- shapes and structure ----------------------------------------------------------------------------
@pytest.mark.parametrize("builder, dim", [(resnet_mini, 256), (resnet18, 512), (resnet34, 512)])
def test_forward_shapes(builder, dim):
    model = builder(CFG, MODS)
    with torch.no_grad():
        out = model(images(2, 32, 16), "infrared")
    assert model.feat_dim == dim and model.modalities == MODS
    assert out["pool"].shape == (2, dim) and out["feat"].shape == (2, dim)


def test_resnet50_tiny_forward():
    model = resnet50(CFG, ("visible",)).eval()
    with torch.no_grad():
        out = model(images(1, 32, 16), "visible")
    assert model.feat_dim == 2048 and out["feat"].shape == (1, 2048)


def test_registered_names_resolve_to_builders():
    assert BACKBONES.get("resnet-mini") is resnet_mini
    assert BACKBONES.get("resnet50") is resnet50


@pytest.mark.parametrize("last_stride, fmap", [(1, (4, 2)), (2, (2, 1))])
def test_last_stride(last_stride, fmap):
    model = resnet_mini(CFG, MODS, last_stride=last_stride)
    x = model.forward_layers(model.forward_stem(images(), "visible"))
    assert x.shape == (2, 256, *fmap)
    assert model.forward_layers(model.forward_stem(images(), "visible"), 1, 3).shape[-2:] == (4, 2)


def test_forward_layers_fork_equals_whole_trunk():
    model = resnet_mini(CFG, MODS).eval()
    stem = model.forward_stem(images(), "visible")
    forked = model.forward_layers(model.forward_layers(stem, 1, 3), 4, 4)
    assert torch.equal(forked, model.forward_layers(stem))
    with pytest.raises(ValueError, match="start"):
        model.forward_layers(stem, 3, 2)


def test_shared_stem_is_one_module():
    model = resnet_mini(CFG, MODS, stems="shared")
    assert model.stem("visible") is model.stem("infrared")
    assert len(model.stems) == 1


def test_per_modality_stems_are_separate():
    model = resnet_mini(CFG, MODS, stems="per-modality")
    vis, ir = model.stem("visible"), model.stem("infrared")
    assert vis is not ir
    assert vis.conv1.weight.data_ptr() != ir.conv1.weight.data_ptr()
    model(images(), "visible")["feat"].sum().backward()
    assert vis.conv1.weight.grad is not None and ir.conv1.weight.grad is None


def test_unknown_modality_and_bad_options():
    model = resnet_mini(CFG, MODS)
    with pytest.raises(KeyError, match="thermal"):
        model(images(), "thermal")
    with pytest.raises(ValueError, match="stems"):
        resnet_mini(CFG, MODS, stems="separate")
    with pytest.raises(TypeError, match="stem_mode"):
        resnet_mini(CFG, MODS, stem_mode="shared")


# -- mixed-modality forward ----------------------------------------------------------------------------
@pytest.mark.parametrize("stems", ["shared", "per-modality"])
def test_forward_multi_equals_separate_forwards_in_eval(stems):
    model = resnet_mini(CFG, MODS, stems=stems).eval()
    batch = {"visible": images(3, seed=1), "infrared": images(2, seed=2)}
    with torch.no_grad():
        multi = model.forward_multi(batch)
        for modality, x in batch.items():
            single = model(x, modality)
            for key in ("pool", "feat"):
                assert multi[modality][key].shape == single[key].shape
                torch.testing.assert_close(multi[modality][key], single[key], rtol=1e-4, atol=1e-5)


def test_forward_multi_per_modality_stem_batch_is_imsls_forward():
    """stem_batch=per-modality: the stem sees one modality at a time (IMSL's code); the trunk and the neck
    see the concatenation."""
    model = resnet_mini(CFG, MODS, stems="shared", stem_batch="per-modality").train()
    a, b = images(3, seed=1), images(3, seed=2) * 3 + 1
    multi = model.forward_multi({"visible": a, "infrared": b})
    stems = torch.cat([model.forward_stem(a, "visible"), model.forward_stem(b, "infrared")])
    joint = model.forward_head(model.forward_layers(stems))
    torch.testing.assert_close(multi["visible"]["feat"], joint["feat"][:3], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(multi["infrared"]["pool"], joint["pool"][3:], rtol=1e-4, atol=1e-5)
    separate = model(a, "visible")
    assert not torch.allclose(multi["visible"]["feat"], separate["feat"], atol=1e-3)


def test_forward_multi_joint_stem_batch_is_one_forward_of_the_concatenation():
    """stem_batch=joint (the default): a shared stem's BatchNorm sees every modality together, as its
    running statistics do at evaluation."""
    model = resnet_mini(CFG, MODS, stems="shared").train()
    assert model.stem_batch == "joint"
    a, b = images(3, seed=1), images(3, seed=2) * 3 + 1
    multi = model.forward_multi({"visible": a, "infrared": b})
    whole = model(torch.cat([a, b]), "visible")
    torch.testing.assert_close(multi["visible"]["feat"], whole["feat"][:3], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(multi["infrared"]["pool"], whole["pool"][3:], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="stem_batch"):
        resnet_mini(CFG, MODS, stem_batch="mixed")


# -- pooling and neck ------------------------------------------------------------------------------------
def test_gem_matches_brute_force():
    x = torch.rand(2, 3, 4, 5) - 0.1  # some negatives: clamped to eps
    p, eps = 3.0, 1e-6
    expected = torch.empty(2, 3)
    for b in range(2):
        for c in range(3):
            values = [max(float(v), eps) ** p for v in x[b, c].flatten()]
            expected[b, c] = (sum(values) / len(values)) ** (1 / p)
    torch.testing.assert_close(GeMPooling(p, eps)(x), expected, rtol=1e-5, atol=1e-6)
    positive = torch.rand(2, 3, 4, 5) + 0.1
    torch.testing.assert_close(GeMPooling(1.0)(positive), AvgPooling()(positive))


@pytest.mark.parametrize("pooling", ["gem", "avg"])
def test_backbone_pooling_of_last_map(pooling):
    model = resnet_mini(CFG, MODS, pooling=pooling, gem_p=4.0).eval()
    with torch.no_grad():
        fmap = model.forward_layers(model.forward_stem(images(), "visible"))
        pooled = model(images(), "visible")["pool"]
    expected = fmap.clamp(min=1e-6).pow(4.0).mean((2, 3)).pow(0.25) if pooling == "gem" else fmap.mean((2, 3))
    torch.testing.assert_close(pooled, expected)


def test_bnneck_bias_frozen_and_feat_not_normalised():
    model = resnet_mini(CFG, MODS)
    assert isinstance(model.neck, BNNeck)
    bn = model.neck.bn
    assert not bn.bias.requires_grad and torch.all(bn.bias == 0) and torch.all(bn.weight == 1)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    out = model(images(4), "visible")
    (out["feat"] * torch.randn_like(out["feat"])).sum().backward()
    opt.step()
    assert torch.all(bn.bias == 0) and not torch.all(bn.weight == 1)
    assert not torch.allclose(out["feat"].norm(dim=1), torch.ones(4))


def test_without_bnneck_feat_is_pool():
    model = resnet_mini(CFG, MODS, bnneck=False)
    out = model(images(), "visible")
    assert torch.equal(out["feat"], out["pool"])


def test_channels_last_gives_same_features():
    plain = resnet_mini(CFG, MODS).eval()
    fast = resnet_mini(CFG, MODS, channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    assert fast.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(fast(images(), "visible")["feat"], plain(images(), "visible")["feat"],
                                   rtol=1e-4, atol=1e-4)


# -- weights ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", ["plain", "state_dict", "module"])
def test_local_weights_round_trip_into_per_modality_stems(tmp_path, wrap):
    source = resnet_mini(CFG, MODS)
    state = torchvision_layout(source)
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 3}
    elif wrap == "module":
        state = {f"module.{k}": v for k, v in state.items()}
    path = tmp_path / "mini.pth"
    torch.save(state, path)
    loaded = resnet_mini(CFG, MODS, weights=str(path), stems="per-modality").eval()
    for modality in MODS:
        assert torch.equal(loaded.stem(modality).conv1.weight, source.stem("visible").conv1.weight)
        assert torch.equal(loaded.stem(modality).bn1.running_var, source.stem("visible").bn1.running_var)
    assert torch.equal(loaded.layer3[0].conv2.weight, source.layer3[0].conv2.weight)
    source.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(images(), "infrared")["feat"], source(images(), "infrared")["feat"])


def test_backbone_state_dict_round_trip(tmp_path):
    source = resnet_mini(CFG, MODS, stems="per-modality")
    path = tmp_path / "own.pth"
    torch.save(source.state_dict(), path)
    loaded = resnet_mini(CFG, MODS, stems="per-modality", weights=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_torchvision_resnet18_file_matches_torchvision_trunk(tmp_path):
    reference = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    model = resnet18(CFG, MODS, weights=str(path), last_stride=2).eval()
    x = images()
    with torch.no_grad():
        expected = reference.layer4(reference.layer3(reference.layer2(reference.layer1(
            reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))))))
        torch.testing.assert_close(model.forward_layers(model.forward_stem(x, "visible")), expected)


def test_missing_keys_are_logged(tmp_path, caplog):
    state = torchvision_layout(resnet_mini(CFG, MODS))
    state = {k: v for k, v in state.items() if not k.startswith("layer4.")}
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with caplog.at_level(logging.WARNING, logger="reidkit.models.backbones"):
        resnet_mini(CFG, MODS, weights=str(path))
    text = caplog.text
    assert "missing" in text and "layer4.0.bn1.weight" in text
    assert "extra.weight" in text and "fc.weight" not in text


def test_weights_for_another_architecture_fail(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(WeightsError, match="does not fit backbone resnet-mini"):
        resnet_mini(CFG, MODS, weights=str(path))


def test_missing_and_corrupt_weights_files(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        resnet_mini(CFG, MODS, weights=str(missing))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="corrupt.pth"):
        resnet_mini(CFG, MODS, weights=str(corrupt))


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty torch hub cache and a download that fails as it does without a network."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(url, destination):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(weights, "_download", no_network)
    return tmp_path


def test_imagenet_offline_error_names_the_file(offline_hub):
    with pytest.raises(WeightsError) as err:
        imagenet_state_dict(RESNET50)
    message = str(err.value)
    assert "resnet50-0676ba61.pth" in message and str(offline_hub / "checkpoints") in message
    assert "model.weights=/path/to/resnet50-0676ba61.pth" in message
    with pytest.raises(WeightsError, match="resnet18-f37072fd.pth"):
        resnet18(CFG, MODS, weights="imagenet")


def test_imagenet_from_cache_is_copied_into_each_stem(offline_hub):
    reference = torchvision.models.resnet18(weights=None)
    (offline_hub / "checkpoints").mkdir()
    torch.save(reference.state_dict(), offline_hub / "checkpoints" / "resnet18-f37072fd.pth")
    model = resnet18(CFG, MODS, weights="imagenet", stems="per-modality")
    for modality in MODS:
        assert torch.equal(model.stem(modality).conv1.weight, reference.conv1.weight)
    assert torch.equal(model.layer2[1].bn2.weight, reference.layer2[1].bn2.weight)


def test_resnet_mini_has_no_imagenet_weights():
    with pytest.raises(WeightsError, match="no ImageNet weights exist for backbone resnet-mini"):
        resnet_mini(CFG, MODS, weights="imagenet")


def test_resnet_mini_learns_a_toy_task():
    """Gradients reach every stage: two classes (bright top / bright bottom) become separable quickly."""
    torch.manual_seed(0)
    model = resnet_mini(CFG, MODS)
    classifier = torch.nn.Linear(model.feat_dim, 2)
    opt = torch.optim.Adam([*model.parameters(), *classifier.parameters()], lr=1e-3)
    labels = torch.arange(16) % 2
    x = torch.randn(16, 3, 32, 16) * 0.5
    x[labels == 0, :, :16] += 1.0
    x[labels == 1, :, 16:] += 1.0
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(classifier(model(x, "visible")["feat"]), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model.stem("visible").conv1.weight.grad.abs().sum() > 0
