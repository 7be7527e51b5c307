"""The decoded-image cache: bounded, keyed by file version, bypassed in workers, and invisible in results."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from reidkit.data import image_cache as image_cache_module
from reidkit.data.image_cache import ImageCache
from reidkit.data.image_dataset import load_image, load_image_cached
from reidkit.data.loaders import test_loader as make_test_loader
from reidkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD, test_transform
from reidkit.testing import tiny_config


def _write(path, seed, size=(20, 12)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(path)
    return path


def test_second_read_comes_from_memory_and_is_the_same_image(tmp_path):
    path = _write(tmp_path / "a.png", 0)
    cache = ImageCache(2**20)
    first = load_image_cached(path, cache)
    second = load_image_cached(path, cache)
    assert (cache.misses, cache.hits, len(cache)) == (1, 1, 1)
    assert np.array_equal(np.asarray(first), np.asarray(load_image(path)))
    assert np.array_equal(np.asarray(second), np.asarray(first))


def test_cached_arrays_are_read_only(tmp_path):
    path = _write(tmp_path / "a.png", 0)
    cache = ImageCache(2**20)
    cache.get(path, lambda: np.asarray(load_image(path)))
    array = cache.get(path, lambda: pytest.fail("read from disk again"))
    with pytest.raises(ValueError):
        array[0, 0, 0] = 1


def test_the_cache_stops_growing_at_its_budget(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", i) for i in range(4)]
    one = 20 * 12 * 3
    cache = ImageCache(2 * one + 10)
    for p in paths + paths:
        load_image_cached(p, cache)
    assert len(cache) == 2 and cache.bytes == 2 * one <= cache.max_bytes
    assert cache.hits == 2 and cache.misses == 6  # the two that did not fit are decoded every time


def test_a_rewritten_file_is_read_again(tmp_path):
    path = _write(tmp_path / "a.png", 0)
    cache = ImageCache(2**20)
    before = np.asarray(load_image_cached(path, cache))
    _write(path, 1)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a distinct mtime on coarse clocks
    after = np.asarray(load_image_cached(path, cache))
    assert not np.array_equal(before, after)
    assert np.array_equal(after, np.asarray(load_image(path)))


def test_a_zero_budget_or_a_worker_process_caches_nothing(tmp_path, monkeypatch):
    path = _write(tmp_path / "a.png", 0)
    off = ImageCache(0)
    load_image_cached(path, off)
    assert len(off) == 0
    monkeypatch.setattr(image_cache_module, "get_worker_info", lambda: object())
    worker = ImageCache(2**20)
    load_image_cached(path, worker)
    assert len(worker) == 0 and worker.misses == 0


def test_missing_files_still_fail_with_the_file_named(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        load_image_cached(tmp_path / "missing.png", ImageCache(2**20))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_test_transform_equals_resize_to_tensor_normalize_bit_for_bit(mode):
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, size=(50, 23, 3), dtype=np.uint8)).convert(mode).convert("RGB")
    reference = T.Compose([T.Resize((32, 16), interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(),
                           T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    transform = test_transform((32, 16))
    assert torch.equal(transform(image), reference(image))
    batch = torch.from_numpy(np.stack([transform.resized(image)] * 2))
    assert torch.equal(transform.normalise(batch), torch.stack([reference(image)] * 2))


def test_the_test_loader_gives_the_same_batches_with_and_without_a_cache(tiny_root):
    from reidkit.data.datasets.generic import GenericDataset
    from reidkit.config import DataConfig

    samples = GenericDataset.from_config(DataConfig(dataset="generic", root=str(tiny_root))).train
    transform = test_transform((32, 16))
    cache = ImageCache(2**24)
    plain = torch.cat(list(make_test_loader(samples, transform, batch_size=5, workers=0)))
    for _ in range(2):
        cached = torch.cat(list(make_test_loader(samples, transform, batch_size=5, workers=0, cache=cache)))
        assert torch.equal(cached, plain)
    masks = torch.cat(list(make_test_loader(samples, transform, batch_size=5, workers=0, source="mask", cache=cache)))
    assert torch.equal(masks, torch.cat(list(make_test_loader(samples, transform, batch_size=5, workers=0,
                                                              source="mask"))))
    assert cache.hits == len(samples) and len(cache) == 2 * len(samples)


@pytest.mark.parametrize("method", ["chcr", "imsl"])
def test_a_run_gives_the_same_result_with_and_without_the_cache(method, tiny_root, tmp_path, monkeypatch):
    """CHCR reads every image several times an epoch (channel views), IMSL its masks too: same losses,
    labels and scores to the last bit."""
    from reidkit.engine import trainer
    from reidkit.engine.run import run
    from reidkit.registry import METHODS

    caches = []

    class Recorded(ImageCache):
        def __init__(self, max_bytes):
            super().__init__(max_bytes)
            caches.append(self)

    monkeypatch.setattr(trainer, "ImageCache", Recorded)
    cls = METHODS.get(method)
    docs = {}
    for mb in (0, 64):
        cfg = tiny_config(cls, tiny_root, ["optim.epochs=2", f"data.image_cache_mb={mb}",
                                           f"output={tmp_path / str(mb)}"])
        docs[mb] = run(cfg)
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rs]
    assert docs[0]["results"] == docs[64]["results"]
    assert strip(docs[0]["epochs"]) == strip(docs[64]["epochs"])
    assert len(caches[0]) == 0 and caches[1].hits > 0 and caches[1].misses == len(caches[1])  # all kept, read again


def test_the_benchmark_times_the_suites_own_seed0_jobs(benchmark_script):
    script = benchmark_script("image_cache")
    job = script.suite_job("chcr", "standard-nir")
    assert job.method == "chcr" and job.id == "synthetic-standard-nir/chcr/seed0"
    with pytest.raises(SystemExit, match="no seed-0 job"):
        script.suite_job("chcr", "tiny")


def test_runs_differing_only_in_the_cache_size_are_the_same_experiment(tmp_path):
    """A suite's checkpoint written before ``data.image_cache_mb`` existed (or with another size) resumes."""
    import yaml

    from reidkit.bench.runner import _same_config
    from reidkit.config import resolve, to_dict

    saved = to_dict(resolve("chcr", overrides=["data.image_cache_mb=0"]))
    del saved["data"]["image_cache_mb"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert _same_config(tmp_path / "config.yaml", resolve("chcr"))
    assert not _same_config(tmp_path / "config.yaml", resolve("chcr", overrides=["seed=1"]))
