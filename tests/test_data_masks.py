"""``reidkit data masks``: the mask layout that data.mask_root reads, resuming, the sources and the errors,
on tiny fake layouts made here."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reidkit.cli import main
from reidkit.config import DataConfig
from reidkit.data.datasets.generic import GenericDataset
from reidkit.data.datasets.sysu_mm01 import SYSUMM01
from reidkit.data.masks import MaskError, mask_file, person_region, save_mask, write_masks
from reidkit.data.masks_sources import SilhouetteSource, make_source
from reidkit.data.records import Sample
from reidkit.testing import make_tiny_dataset

# torch >= 2.10 marks TorchScript deprecated; the parsing source still reads it, so the tests save it
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

H, W = 32, 16
BOX = (slice(8, 24), slice(4, 12))  # the person of every fake image: rows 8-23, columns 4-11


def person_image(value: int = 230, seed: int = 0) -> Image.Image:
    """A dark noisy background with a bright rectangle (the "person") at BOX."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 40, size=(H, W, 3)).astype(np.uint8)
    img[BOX] = value
    return Image.fromarray(img)


def box_mask() -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[BOX] = True
    return mask


@pytest.fixture()
def generic(tmp_path) -> Path:
    return make_tiny_dataset(tmp_path / "data", ids=3, per_id=2, test_ids=1)


def write_sysu(root: Path) -> Path:
    """A fake SYSU-MM01 copy with real images: train ids 1-2 (val 3), test id 4, cameras 1-6."""
    for pid in (1, 2, 3, 4):
        for cam in range(1, 7):
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            for i in (1, 2):
                person_image(seed=pid * 10 + cam + i).save(folder / f"{i:04d}.jpg", quality=95)
    (root / "exp").mkdir()
    for name, ids in (("train_id", "1,2"), ("val_id", "3"), ("test_id", "4")):
        (root / "exp" / f"{name}.txt").write_text(ids + "\n")
    return root


def run(*args: str) -> int:
    return main(["data", "masks", *args])


# ---------------------------------------------------------------------------------------------------------
# the layout data.mask_root reads
# ---------------------------------------------------------------------------------------------------------
def test_generic_layout_masks_are_found_by_mask_root(generic, tmp_path, capsys):
    out = tmp_path / "masks"
    assert run("generic", str(generic), "--source", "silhouette", "--output", str(out)) == 0
    train = GenericDataset.from_root(generic).train
    written = sorted(p for p in out.rglob("*.png"))
    assert len(written) == len(train) == 12
    loaded = GenericDataset.from_root(generic, mask_root=out)
    assert all(s.mask_path and Path(s.mask_path).parent.parent.parent.parent == out for s in loaded.train)
    for s in loaded.train:
        with Image.open(s.mask_path) as img:
            assert img.mode == "P" and img.size == Image.open(s.path).size
            assert set(np.unique(np.array(img))) <= {0, 1}
            assert img.convert("RGB").getpixel((0, 0)) in ((0, 0, 0), (255, 255, 255))
    manifest = json.loads((out / "masks.json").read_text())
    assert manifest["modalities"] == {m: {"source": "silhouette", "options": {}, "images": 6}
                                      for m in ("infrared", "visible")}
    assert "12 masks written" in capsys.readouterr().out


def test_sysu_masks_mirror_the_tree_and_attach_to_every_training_image(tmp_path):
    root = write_sysu(tmp_path / "SYSU-MM01")
    out = tmp_path / "masks"
    assert run("sysu_mm01", str(tmp_path), "--source", "silhouette", "--output", str(out)) == 0
    assert (out / "cam1" / "0001" / "0001.png").is_file()  # cam1/0001/0001.jpg, mirrored
    assert not (out / "cam1" / "0004").exists()  # test ids get none
    data = SYSUMM01.from_config(DataConfig(dataset="sysu_mm01", root=str(root), mask_root=str(out)))
    assert len(data.train) == 36
    assert all(s.mask_path == str(mask_file(s, root, out)) for s in data.train)
    # the silhouette finds the bright box on these easy images
    ious = [np.logical_and(person_region(s.mask_path), box_mask()).sum()
            / np.logical_or(person_region(s.mask_path), box_mask()).sum() for s in data.train]
    assert min(ious) > 0.6


def test_mask_file_refuses_images_outside_the_root(tmp_path):
    with pytest.raises(MaskError, match="outside the dataset root"):
        mask_file(Sample(str(tmp_path / "elsewhere" / "a.jpg"), 1, 1, "visible"), tmp_path / "root", tmp_path / "m")


def test_person_region_reads_palette_grey_and_rgb_masks(tmp_path):
    mask = box_mask()
    save_mask(mask, tmp_path / "p.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "l.png")
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[mask] = (40, 180, 60)  # a part colour
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    for name in ("p.png", "l.png", "rgb.png"):
        assert np.array_equal(person_region(tmp_path / name), mask), name


# ---------------------------------------------------------------------------------------------------------
# resuming
# ---------------------------------------------------------------------------------------------------------
class Counting:
    """A fake source: the box mask of every image, counting the images it was given."""

    name = "counting"
    batch_size = 3

    def __init__(self, options=None):
        self.seen = 0
        self.options = options or {}

    def describe(self):
        return self.options

    def __call__(self, images):
        self.seen += len(images)
        return [box_mask() for _ in images]


def test_a_rerun_writes_only_the_missing_masks(generic, tmp_path):
    data = GenericDataset.from_root(generic)
    out = tmp_path / "m"
    first = Counting()
    assert write_masks(data.train, data.root, out, first).written == 12 and first.seen == 12
    removed = mask_file(data.train[5], data.root, out)
    removed.unlink()
    (removed.parent / f".{removed.name}.999.tmp").write_bytes(b"half a png")  # a crash's leftover
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    again, done = Counting(), []
    summary = write_masks(data.train, data.root, out, again, progress=done.append)
    assert (summary.written, summary.skipped, again.seen, sum(done)) == (1, 11, 1, 12)
    assert removed.is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert write_masks(data.train, data.root, out, Counting(), overwrite=True).written == 12


def test_another_source_or_other_options_cannot_resume_a_folder(generic, tmp_path, capsys):
    data = GenericDataset.from_root(generic)
    out = tmp_path / "m"
    write_masks(data.train, data.root, out, Counting({"t": 1}))
    with pytest.raises(MaskError, match="other options"):
        write_masks(data.train, data.root, out, Counting({"t": 2}))
    assert run("generic", str(generic), "--source", "silhouette", "--output", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "'counting'" in err[0] and "--overwrite" in err[0]


def test_modalities_may_come_from_different_sources(generic, tmp_path, capsys):
    out = tmp_path / "m"
    assert run("generic", str(generic), "--modality", "infrared", "--source", "silhouette", "--output", str(out)) == 0
    assert not (out / "train" / "visible").exists()
    data = GenericDataset.from_root(generic)
    write_masks([s for s in data.train if s.modality == "visible"], data.root, out, Counting())
    manifest = json.loads((out / "masks.json").read_text())["modalities"]
    assert {m: e["source"] for m, e in manifest.items()} == {"infrared": "silhouette", "visible": "counting"}
    assert all(s.mask_path for s in GenericDataset.from_root(generic, mask_root=out).train)
    assert run("generic", str(generic), "--source", "silhouette", "--output", str(out)) == 2  # visible: counting
    assert run("generic", str(generic), "--modality", "thermal", "--source", "silhouette", "--output", str(out)) == 2
    assert "no modality thermal" in capsys.readouterr().err


def test_a_wrong_mask_size_is_an_error(generic, tmp_path):
    class Wrong(Counting):
        def __call__(self, images):
            return [np.zeros((3, 3), dtype=bool) for _ in images]

    data = GenericDataset.from_root(generic)
    with pytest.raises(MaskError, match="3, 3"):
        write_masks(data.train, data.root, tmp_path / "m", Wrong())


# ---------------------------------------------------------------------------------------------------------
# one error line on bad input
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (["generic", "{tmp}/nowhere", "--source", "silhouette"], "does not exist"),
    (["no_such_dataset", "{tmp}", "--source", "silhouette"], "no_such_dataset"),
    (["generic", "{data}", "--source", "parsing"], "--checkpoint"),
    (["generic", "{data}", "--source", "parsing", "--checkpoint", "{tmp}/none.pt"], "not found"),
    (["generic", "{data}", "--source", "parsing", "--checkpoint", "{tmp}/junk.pt"], "not a TorchScript"),
    (["generic", "{data}", "--source", "silhouette", "--output", "{tmp}/junk.pt"], "is a file"),
])
def test_bad_input_prints_one_error_line(generic, tmp_path, capsys, args, says):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    args = [a.format(tmp=tmp_path, data=generic) for a in args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "out")]
    assert run(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and says in err[0], err


# ---------------------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------------------
class TinyParser(torch.nn.Module):
    """Three classes at half resolution: 0 background, 1 upper body, 2 lower body; a pixel is body where
    the image is bright. Returns SCHP's nesting, [[parsing, fusion], [edge]]."""

    def forward(self, x: torch.Tensor):
        person = (x.mean(dim=1, keepdim=True) > 0.5).float()
        h = x.shape[2]
        upper = (torch.arange(h, device=x.device) < h // 2).view(1, 1, h, 1).float()
        logits = 10 * torch.cat([1 - person, person * upper, person * (1 - upper)], dim=1)
        half = torch.nn.functional.avg_pool2d(logits, 2)
        return [[half, half], [half[:, :1]]]


@pytest.fixture(params=["pt2", "torchscript"])
def parser_file(tmp_path, request) -> Path:
    """The tiny parser saved as an exported program with a dynamic batch (.pt2) or as TorchScript (.pt)."""
    if request.param == "pt2":
        path = tmp_path / "parser.pt2"
        example = (torch.rand(2, 3, H, W),)
        torch.export.save(torch.export.export(TinyParser(), example,
                                              dynamic_shapes=({0: torch.export.Dim("batch")},)), str(path))
    else:
        path = tmp_path / "parser.pt"
        torch.jit.save(torch.jit.script(TinyParser()), str(path))
    return path


def test_parsing_source_merges_parts_into_the_person(parser_file):
    source = make_source("parsing", checkpoint=str(parser_file), input_size=(H, W), device="cpu")
    images = [person_image(seed=s) for s in range(3)]
    for mask in source(images):
        assert mask.shape == (H, W) and np.array_equal(mask, box_mask())
    lower = make_source("parsing", checkpoint=str(parser_file), person_classes=[2], input_size=(H, W))
    expected = box_mask()
    expected[:H // 2] = False
    assert np.array_equal(lower(images[:1])[0], expected)
    # another input size: logits come back to the image's own size (an exported program has fixed sizes)
    other = make_source("parsing", checkpoint=str(parser_file), input_size=(64, 32))
    if parser_file.suffix == ".pt2":
        with pytest.raises(MaskError, match="--input-size"):
            other(images[:1])
    else:
        resized = other(images[:1])[0]
        assert resized.shape == (H, W) and (resized == box_mask()).mean() > 0.95
    assert source.describe()["input_size"] == [H, W]


def test_parsing_source_through_the_cli(generic, parser_file, tmp_path):
    out = tmp_path / "m"
    assert run("generic", str(generic), "--source", "parsing", "--checkpoint", str(parser_file),
               "--input-size", "32x16", "--output", str(out)) == 0
    data = GenericDataset.from_root(generic, mask_root=out)
    assert all(s.mask_path for s in data.train)


def test_parsing_source_rejects_a_wrong_output_and_a_missing_class(tmp_path, parser_file):
    class Flat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=1)

    path = tmp_path / "flat.pt"
    torch.jit.save(torch.jit.script(Flat()), str(path))
    with pytest.raises(MaskError, match=r"\[B, C, h, w\]"):
        make_source("parsing", checkpoint=str(path), input_size=(H, W))([person_image()])
    with pytest.raises(MaskError, match="3 classes"):
        make_source("parsing", checkpoint=str(parser_file), background_class=7, input_size=(H, W))([person_image()])


def test_silhouette_source_is_imsls_estimate():
    from torchvision.transforms.functional import normalize, to_tensor

    from reidkit_methods.imsl.smr import silhouette

    image = person_image()
    x = normalize(to_tensor(image), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])[None]
    expected = silhouette(x)[0, 0] > 0  # the person is (1 - mean) / std > 0, the background below 0
    assert np.array_equal(SilhouetteSource()([image])[0], expected.numpy())


def test_mediapipe_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import fails as if not installed
    with pytest.raises(MaskError, match=r"reidkit\[masks\]"):
        make_source("mediapipe")


def test_mediapipe_segments_offline():
    pytest.importorskip("mediapipe")
    import mediapipe

    if mediapipe.__version__ != "0.10.21":
        pytest.skip("the masks extra pins mediapipe 0.10.21")
    rng = np.random.default_rng(0)
    source = make_source("mediapipe")
    mask = source([Image.fromarray(rng.integers(0, 255, size=(64, 32, 3), dtype=np.uint8))])[0]
    assert mask.shape == (64, 32) and mask.dtype == bool
    assert source.describe()["mediapipe"] == "0.10.21"


def test_unknown_source_is_an_error():
    with pytest.raises(MaskError, match="known"):
        make_source("oracle")


# ---------------------------------------------------------------------------------------------------------
# benchmarks/mask_sources.py
# ---------------------------------------------------------------------------------------------------------
def test_benchmark_scores_a_perfect_source_one_and_an_empty_one_zero(generic, tmp_path, benchmark_script):
    bench = benchmark_script("mask_sources")
    data = GenericDataset.from_root(generic)  # make_tiny_dataset writes exact masks under masks/
    # measure() visits the modalities in sorted order, each modality's samples in dataset order
    visits = [s for m in sorted(data.modalities) for s in data.train if s.modality == m]

    class Replay(Counting):
        def __init__(self, masks):
            super().__init__()
            self.masks = iter(masks)

        def __call__(self, images):
            return [next(self.masks) for _ in images]

    perfect = bench.measure(data.train, Replay([person_region(s.mask_path) for s in visits]))
    assert all(r["mean"] == r["pooled"] == 1.0 and r["empty"] == 0.0 for r in perfect.values())
    empty = bench.measure(data.train, Replay([np.zeros((H, W), dtype=bool) for _ in visits]))
    assert all(r["mean"] == 0.0 and r["empty"] == 1.0 for r in empty.values())
    page = tmp_path / "page.md"
    page.write_text("# t\n\n<!-- iou:begin -->\nold\n<!-- iou:end -->\nkept\n")
    bench.replace_block(page, "iou", "new")
    assert page.read_text() == "# t\n\n<!-- iou:begin -->\nnew\n<!-- iou:end -->\nkept\n"


def test_benchmark_deltas_pair_each_source_with_the_exact_masks_by_seed(tmp_path, benchmark_script):
    bench = benchmark_script("mask_sources")

    def fake_run(rel: str, method: str, seed: int, maps: tuple[float, float], epochs=()) -> None:
        run_dir = tmp_path / rel
        run_dir.mkdir(parents=True)
        results = {p: {"mAP": m} for p, m in zip(("visible-to-infrared", "infrared-to-visible"), maps)}
        doc = {"method": method, "dataset": "synthetic", "seed": seed, "results": results,
               "epochs": list(epochs)}
        (run_dir / "metrics.json").write_text(json.dumps(doc))

    for seed, (exact, silhouette) in enumerate([((0.30, 0.34), (0.20, 0.22)), ((0.40, 0.40), (0.41, 0.43))]):
        fake_run(f"standard.exact/imsl/smr/seed{seed}", "imsl", seed, exact)
        fake_run(f"standard.silhouette/imsl/smr/seed{seed}", "imsl", seed, silhouette)
    table = bench.deltas_table(tmp_path).splitlines()
    assert table[0].endswith("| Δ without it, per seed | mean Δ | pairs right, first → last epoch (%) |")
    assert table[2] == "| standard | imsl/smr | exact | 36.0 | | | | | |"
    assert table[3] == "| standard | imsl/smr | silhouette | 31.5 | 0: -11.0, 1: +2.0 | -4.5 | | | |"
    assert table[-1] == bench.WITHOUT_WORDS
    fake_run("standard.exact/chcr/image/seed0", "chcr", 0, (0.40, 0.40))
    pairs = [{"cross_pair_precision": p} for p in (0.30, 0.45, 0.50)]  # first and last epoch count
    fake_run("standard.exact/chcr/merge-masks/seed0", "chcr", 0, (0.5, 0.5), pairs)
    fake_run("standard.silhouette/imsl/shape-link/seed1", "imsl", 1, (0.45, 0.45))
    for seed, maps in enumerate([(0.25, 0.25), (0.40, 0.42)]):  # IMSL without SMR, e.g. a ladder rung
        fake_run(f"ladder/2-mmc+mil/seed{seed}", "imsl", seed, maps)
    table = bench.deltas_table(tmp_path, {"standard": tmp_path / "ladder" / "2-mmc+mil"}).splitlines()
    assert table[2] == "| standard | chcr/image | exact | 40.0 | | | | | |"
    # the mask merge is paired with the image merge (its own suite's runs), whatever its masks
    assert table[3] == "| standard | chcr/merge-masks | exact | 50.0 | | | 0: +10.0 | +10.0 | 30 → 50 |"
    # the shape link is paired with MMC's link (imsl/smr) on the same masks
    assert table[4] == "| standard | imsl/shape-link | silhouette | 45.0 | | | 1: +3.0 | +3.0 | |"
    assert table[5] == "| standard | imsl/smr | exact | 36.0 | | | 0: +7.0, 1: -1.0 | +3.0 | |"
    assert table[6] == ("| standard | imsl/smr | silhouette | 31.5 | 0: -11.0, 1: +2.0 | -4.5 "
                        "| 0: -4.0, 1: +1.0 | -1.5 | |")
    assert table[-1] == "IMSL without SMR (seed: mean mAP %): standard: 0: 25.0, 1: 41.0"
