"""Image loading and ImageDataset: bad files are reported by name; items carry views, masks, index, camera."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reidkit.data.image_dataset import BadImageError, ImageDataset, load_image
from reidkit.data.records import Sample
from reidkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, train_transform
from reidkit.data.transforms import test_transform as eval_transform

SIZE = (32, 16)


def write_png(path, mode: str = "RGB", size=(16, 32), seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode).save(path)
    return str(path)


def test_load_image_returns_rgb(tmp_path):
    img = load_image(write_png(tmp_path / "gray.png", mode="L"))
    assert img.mode == "RGB" and img.size == (16, 32)


def test_truncated_png_names_the_file(tmp_path):
    path = write_png(tmp_path / "broken.png")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(BadImageError, match="broken.png") as err:
        load_image(path)
    assert err.value.path == path and "truncated" in err.value.reason.lower()
    assert isinstance(err.value, ValueError)


def test_not_an_image_and_missing_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(BadImageError, match="notes.png"):
        load_image(text)
    with pytest.raises(BadImageError, match="absent.png.*not found"):
        load_image(tmp_path / "absent.png")


def samples(tmp_path, with_masks: bool = True) -> list[Sample]:
    out = []
    for i in range(3):
        mask = write_png(tmp_path / f"m{i}.png", mode="L", seed=10 + i) if with_masks else None
        out.append(Sample(write_png(tmp_path / f"c{i + 1}_{i}.png", seed=i), 7, i + 1, "visible", mask))
    return out


def test_item_views_mask_index_camera(tmp_path):
    dataset = ImageDataset(samples(tmp_path), [train_transform(SIZE), eval_transform(SIZE)],
                           mask_transform=eval_transform(SIZE))
    item = dataset[2]
    assert len(dataset) == 3
    assert set(item) == {"views", "mask", "index", "camera"}
    assert len(item["views"]) == 2 and all(v.shape == (3, *SIZE) for v in item["views"])
    assert item["index"] == 2 and item["camera"] == 3
    mask = item["mask"] * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert mask.shape == (3, *SIZE)
    torch.testing.assert_close(mask[0], mask[2])  # a grayscale mask read as RGB
    torch.testing.assert_close(item["views"][1], eval_transform(SIZE)(load_image(dataset.samples[2].path)))


def test_no_mask_without_mask_transform(tmp_path):
    item = ImageDataset(samples(tmp_path, with_masks=False), [eval_transform(SIZE)])[0]
    assert item["mask"] is None


def test_items_are_deterministic_under_torch_seed(tmp_path):
    dataset = ImageDataset(samples(tmp_path), [train_transform(SIZE)], mask_transform=train_transform(SIZE))
    torch.manual_seed(5)
    a = dataset[0]
    torch.manual_seed(5)
    b = dataset[0]
    assert torch.equal(a["views"][0], b["views"][0]) and torch.equal(a["mask"], b["mask"])


def test_missing_masks_are_clear_errors(tmp_path):
    no_path = ImageDataset(samples(tmp_path, with_masks=False), [eval_transform(SIZE)],
                           mask_transform=eval_transform(SIZE))
    with pytest.raises(BadImageError, match=r"c1_0\.png: no shape mask"):
        no_path[0]
    items = samples(tmp_path)
    items[1] = Sample(items[1].path, 7, 2, "visible", str(tmp_path / "gone.png"))
    dataset = ImageDataset(items, [eval_transform(SIZE)], mask_transform=eval_transform(SIZE))
    with pytest.raises(BadImageError, match=r"gone\.png: file not found \(the shape mask of .*c2_1\.png\)"):
        dataset[1]


def test_bad_image_in_dataset(tmp_path):
    items = samples(tmp_path, with_masks=False)
    open(items[0].path, "wb").write(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(BadImageError, match=r"c1_0\.png"):
        ImageDataset(items, [eval_transform(SIZE)])[0]
