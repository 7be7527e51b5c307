"""A contact sheet of a generated dataset: the same identities in every modality, with their masks.

Rows are test identities; for each modality the sheet shows the identity's first images (one per camera,
up to :data:`PER_MODALITY`) and the part mask of the first. Works on any folder in the generic layout.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

PER_MODALITY = 2
_CELL = (64, 128)  # width, height of one tile before the 2x zoom
_GAP, _HEADER, _ZOOM = 4, 14, 2


def _modalities(split_dir: Path) -> list[str]:
    names = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    order = ["visible", "nir", "infrared", "tir", "thermal"]
    return sorted(names, key=lambda m: (order.index(m) if m in order else len(order), m))


def _pick(folder: Path) -> list[Path]:
    """Up to PER_MODALITY images of one person folder, preferring distinct cameras."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    chosen, cameras = [], set()
    for f in files:
        cam = f.name.split("_", 1)[0]
        if cam not in cameras:
            chosen.append(f)
            cameras.add(cam)
    for f in files:
        if len(chosen) >= PER_MODALITY:
            break
        if f not in chosen:
            chosen.append(f)
    return chosen[:PER_MODALITY]


def _tile(path: Path | None) -> Image.Image:
    if path is None or not path.is_file():
        return Image.new("RGB", _CELL, (40, 40, 40))
    with Image.open(path) as img:
        return img.convert("RGB").resize(_CELL, Image.NEAREST)


def preview(root: str | Path, png: str | Path, *, identities: int = 6) -> Path:
    """Write a PNG grid of ``identities`` test identities (rows) x modalities (images + mask) and return
    its path. Uses ``test/`` (or ``train/`` when there is no test split)."""
    root = Path(root).expanduser()
    split = "test" if (root / "test").is_dir() else "train"
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{root} has no train/ or test/ folder (generic layout expected)")
    modalities = _modalities(split_dir)
    common = set.intersection(*({p.name for p in (split_dir / m).iterdir() if p.is_dir()} for m in modalities))
    people = sorted(common)[:identities]
    columns = PER_MODALITY + 1
    tile_w, tile_h = _CELL
    width = len(modalities) * (columns * tile_w + _GAP) - _GAP
    height = _HEADER + len(people) * (tile_h + _GAP)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, modality in enumerate(modalities):
        x0 = j * (columns * tile_w + _GAP)
        draw.text((x0 + 2, 1), f"{modality} | mask", fill=(0, 0, 0))
        for i, pid in enumerate(people):
            y0 = _HEADER + i * (tile_h + _GAP)
            picks = _pick(split_dir / modality / pid)
            for k in range(PER_MODALITY):
                sheet.paste(_tile(picks[k] if k < len(picks) else None), (x0 + k * tile_w, y0))
            mask = root / "masks" / split / modality / pid / f"{picks[0].stem}.png" if picks else None
            sheet.paste(_tile(mask), (x0 + PER_MODALITY * tile_w, y0))
    out = Path(png).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((width * _ZOOM, height * _ZOOM), Image.NEAREST).save(out)
    return out
