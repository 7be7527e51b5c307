"""Transforms: pipeline shapes, torch-only randomness, channel augmentations, batch views."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from reidkit.data import transforms
from reidkit.data.transforms import (
    CAJ_ERASE_FILL,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ChannelAdapGray,
    ChannelExchange,
    ChannelRandomErasing,
    Grayscale,
    channel_view,
    hflip,
    train_transform,
)

SIZE = (32, 16)


def photo(seed: int = 0, size=(20, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8), "RGB")


def distinct_channels(h: int = 8, w: int = 6) -> torch.Tensor:
    """[3, h, w] whose channels are different constants (so a copied channel is recognisable)."""
    return torch.stack([torch.full((h, w), v) for v in (-1.0, 0.5, 2.0)])


def which(out: torch.Tensor, img: torch.Tensor) -> str:
    """Name the outcome of a channel operation on ``img``."""
    if torch.equal(out, img):
        return "same"
    for c, name in enumerate("RGB"):
        if torch.equal(out, img[c:c + 1].expand(3, -1, -1)):
            return name
    if torch.allclose(out, Grayscale()(img)):
        return "gray"
    return "other"


# -- pipelines -----------------------------------------------------------------------------------------
def test_train_and_test_output_shapes():
    out = train_transform(SIZE)(photo())
    assert out.shape == (3, *SIZE) and out.dtype == torch.float32
    assert transforms.test_transform(SIZE)(photo()).shape == (3, *SIZE)


def test_test_transform_is_deterministic_normalised_resize():
    img = photo()
    expected = torch.from_numpy(np.asarray(img.resize(SIZE[::-1], Image.BICUBIC), dtype=np.float32) / 255)
    expected = (expected.permute(2, 0, 1) - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(
        IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(transforms.test_transform(SIZE)(img), expected, rtol=0, atol=1e-5)


def test_train_transform_randomness_comes_from_torch_only():
    transform = train_transform(SIZE, extra=[ChannelExchange(), ChannelRandomErasing()], erase_p=0.5)
    img = photo()

    def run(torch_seed: int, other_seed: int) -> torch.Tensor:
        torch.manual_seed(torch_seed)
        random.seed(other_seed)
        np.random.seed(other_seed)
        return torch.stack([transform(img) for _ in range(8)])

    first = run(0, 1)
    assert torch.equal(first, run(0, 2))  # python/numpy state does not matter
    assert not torch.equal(first, run(1, 1))  # torch's does


def test_extra_ops_run_after_normalisation_and_before_erasing():
    seen = []

    def spy(t: torch.Tensor) -> torch.Tensor:
        seen.append(t.clone())
        return t

    white = Image.new("RGB", (16, 32), (255, 255, 255))
    out = train_transform(SIZE, extra=[spy], flip=False, pad=0, erase_p=0.0)(white)
    expected = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(seen[0][:, 0, 0], expected)
    assert torch.equal(out, seen[0])
    gray_only = train_transform(SIZE, extra=[ChannelExchange()], erase_p=0.0)(photo())
    assert torch.equal(gray_only[0], gray_only[1]) and torch.equal(gray_only[1], gray_only[2])


def test_random_erasing_fills_with_imagenet_mean_values():
    torch.manual_seed(0)
    black = Image.new("RGB", (16, 32))
    out = train_transform(SIZE, flip=False, pad=0, erase_p=1.0)(black)
    filled = torch.all(out == torch.tensor(IMAGENET_MEAN).view(3, 1, 1), dim=0)
    assert 0.02 * 32 * 16 - 1 <= filled.sum() <= 0.4 * 32 * 16 + 1


def _erasers(transform) -> list:
    """The random-erasing steps of a train_transform pipeline."""
    return [t for t in transform.transforms if isinstance(t, (T.RandomErasing, ChannelRandomErasing))]


def _erased(out: torch.Tensor, fill=IMAGENET_MEAN) -> torch.Tensor:
    """[H, W] bool: pixels where every channel holds one of the erasing fill values."""
    values = torch.tensor(fill)
    return torch.all((out.unsqueeze(-1) == values).any(-1), dim=0)


def test_after_ops_run_after_erasing_so_erased_areas_are_exchanged_too():
    after = train_transform(SIZE, after=[ChannelExchange()], erase_p=1.0, erasing="uniform")
    before = train_transform(SIZE, extra=[ChannelExchange()], erase_p=1.0, erasing="uniform")
    assert isinstance(after.transforms[-1], ChannelExchange)
    torch.manual_seed(0)
    for seed in range(30):
        out = after(photo(seed))
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])  # grey, erased area included
        area = _erased(out)
        assert area.sum() >= 0.02 * SIZE[0] * SIZE[1] - 1
        assert len(set(out[0][area].tolist())) == 1  # one fill value, copied to every channel
        coloured = before(photo(seed))
        filled = torch.all(coloured == torch.tensor(IMAGENET_MEAN).view(3, 1, 1), dim=0)
        assert filled.sum() >= 0.02 * SIZE[0] * SIZE[1] - 1  # the per-channel fill survives: coloured


def test_train_transform_erasing_kinds():
    uniform = _erasers(train_transform(SIZE, erasing="uniform"))
    assert len(uniform) == 1 and isinstance(uniform[0], ChannelRandomErasing)
    assert uniform[0].fill == IMAGENET_MEAN and uniform[0].area == (0.02, 0.4) and uniform[0].p == 0.5
    assert isinstance(_erasers(train_transform(SIZE))[0], T.RandomErasing)  # the default stays torchvision's
    assert _erasers(train_transform(SIZE, erase_p=0.0, erasing="uniform")) == []
    with pytest.raises(ValueError, match="erasing"):
        train_transform(SIZE, erasing="log-uniform")


def _aspects(eraser, draws: int = 2000, side: int = 192) -> torch.Tensor:
    """Height / width of the rectangles ``eraser`` (p = 1) fills on a zero [3, side, side] image."""
    torch.manual_seed(0)
    img = torch.zeros(3, side, side)
    ratios = []
    for _ in range(draws):
        filled = eraser(img)[0] != 0
        if filled.any():
            ratios.append(float(filled.any(1).sum()) / float(filled.any(0).sum()))
    return torch.tensor(ratios)


def _low_over_high(ratios: torch.Tensor) -> float:
    """Rectangles with aspect in [0.5, 0.8) per rectangle in [2.0, 2.3): 1 if uniform, 3.4 if log-uniform.

    On a square image no draw with aspect in [0.4, 2.5] is ever rejected, so both windows see the raw draw.
    """
    low = ((ratios >= 0.5) & (ratios < 0.8)).sum()
    high = ((ratios >= 2.0) & (ratios < 2.3)).sum()
    return float(low) / float(high)


def test_uniform_erasing_draws_the_aspect_uniformly_in_0_3_to_3_33():
    eraser = _erasers(train_transform(SIZE, erase_p=1.0, erasing="uniform"))[0]
    ratios = _aspects(eraser)
    assert len(ratios) >= 1900  # 100 tries: almost every draw fits
    assert 0.3 * 0.93 <= ratios.min() and ratios.max() <= 3.34 * 1.07  # rounding of 15+ pixel sides
    assert ratios.min() < 0.4 and ratios.max() > 2.6  # the whole range is used
    assert 0.75 <= _low_over_high(ratios) <= 1.33
    # the same statistic tells torchvision's log-uniform draw apart, so the test can fail
    torchvision = _erasers(train_transform(SIZE, erase_p=1.0))[0]
    assert _low_over_high(_aspects(torchvision)) > 2.0


# -- channel operations ----------------------------------------------------------------------------------
def test_channel_exchange_gray2_picks_rgb_uniformly_never_gray():
    img = distinct_channels()
    before = img.clone()
    torch.manual_seed(0)
    outcomes = [which(ChannelExchange(gray=2)(img), img) for _ in range(600)]
    assert torch.equal(img, before)  # input not modified
    counts = {k: outcomes.count(k) for k in set(outcomes)}
    assert set(counts) == {"R", "G", "B"}
    assert all(150 <= n <= 250 for n in counts.values()), counts


def test_channel_exchange_gray3_sometimes_gray():
    img = distinct_channels()
    torch.manual_seed(0)
    outcomes = {which(ChannelExchange(gray=3)(img), img) for _ in range(100)}
    assert outcomes == {"R", "G", "B", "gray"}


@pytest.mark.parametrize("p, expected", [(1.0, {"R", "G", "B", "gray"}), (0.0, {"R", "G", "B", "same"})])
def test_channel_adap_gray_outcomes(p, expected):
    img = distinct_channels()
    torch.manual_seed(0)
    assert {which(ChannelAdapGray(p)(img), img) for _ in range(100)} == expected


def test_channel_random_erasing():
    img = torch.zeros(3, 40, 20)
    assert torch.equal(ChannelRandomErasing(p=0.0)(img), img)
    torch.manual_seed(0)
    for _ in range(20):
        out = ChannelRandomErasing(p=1.0)(img)
        filled = torch.all(out == torch.tensor(CAJ_ERASE_FILL).view(3, 1, 1), dim=0)
        rows, cols = filled.any(1).nonzero(), filled.any(0).nonzero()
        area = int(filled.sum())
        assert area == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle
        assert 0.02 * 800 * 0.5 <= area <= 0.4 * 800 * 1.5
    assert torch.all(img == 0)


def test_grayscale_is_luma_on_every_channel():
    img = torch.randn(3, 4, 5)
    out = Grayscale()(img)
    luma = 0.2989 * img[0] + 0.5870 * img[1] + 0.1140 * img[2]
    for c in range(3):
        torch.testing.assert_close(out[c], luma)


def test_channel_ops_reject_batches():
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        ChannelExchange()(torch.zeros(2, 3, 4, 4))


# -- batch operations ------------------------------------------------------------------------------------
def test_channel_view():
    images = torch.randn(2, 3, 5, 4)
    for c in range(3):
        view = channel_view(images, c)
        assert view.shape == images.shape and view.is_contiguous()
        for k in range(3):
            assert torch.equal(view[:, k], images[:, c])
    with pytest.raises(ValueError, match="channel"):
        channel_view(images, 3)


def test_hflip():
    images = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).view(2, 3, 2, 4)
    flipped = hflip(images)
    assert torch.equal(flipped[..., 0], images[..., -1])
    assert torch.equal(hflip(flipped), images)
