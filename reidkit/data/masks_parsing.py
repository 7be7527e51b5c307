"""The ``parsing`` mask source: a human-parsing (or any semantic segmentation) model from a local file,
its part labels merged into one person region.

The contract, chosen so that any public parser fits it with a few lines of wrapping:

- the file is an exported program (``torch.export.save``, a ``.pt2`` file; export it with a dynamic batch
  dimension, or pass ``--batch-size`` and ``--input-size`` equal to the shape it was exported with) or a
  TorchScript module (``torch.jit.save`` of ``torch.jit.script`` or ``torch.jit.trace``; any other suffix);
- it takes a float batch ``[B, 3, H, W]`` of **RGB images in [0, 1]**, resized to ``input_size``
  (default 512 x 256, height x width, the aspect of a person crop), and does its own normalisation;
- it returns per-pixel class logits ``[B, C, h, w]`` at any resolution (they are resized bilinearly to each
  image's own size), or a list/tuple whose first element is that (recursively), or a dict with an ``"out"``
  entry (torchvision's segmentation models);
- a pixel is person where its arg-max class is not ``background_class`` (default 0, the background label of
  LIP, ATR and Pascal-Person-Part parsers), or, with ``person_classes`` given, where it is one of them (for
  scene segmenters: class 15 is ``person`` in torchvision's VOC-label models).

For example, Self-Correction Human Parsing (``github.com/GoGoDuck912/Self-Correction-Human-Parsing``, LIP
labels, background 0) reads BGR images normalised with its own mean and std, and its ``simple_extractor.py``
takes the fusion logits ``output[0][-1]``; a wrapper that flips the channels, normalises and returns those
meets the contract (docs/datasets.md, "Shape masks for real images").
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import to_tensor

from reidkit.data.masks import MaskError


def first_logits(output: Any) -> Any:
    """The logits tensor of a model output: itself, the first element of a list/tuple (recursively), or a
    dict's ``"out"``."""
    while isinstance(output, (list, tuple, dict)):
        if isinstance(output, dict):
            if "out" not in output:
                raise MaskError(f"the parsing model returned a dict without 'out' (keys: {sorted(output)})")
            output = output["out"]
        elif not output:
            raise MaskError("the parsing model returned an empty list")
        else:
            output = output[0]
    return output


def load_model(path: Path, device: torch.device) -> Any:
    """The callable model in ``path``: an exported program (``.pt2``) or a TorchScript module (eval mode)."""
    try:
        with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated; we still read it
            warnings.simplefilter("ignore", FutureWarning)
            if path.suffix == ".pt2":
                return torch.export.load(str(path)).module().to(device)
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception as e:  # noqa: BLE001 - any failure to read the file is the user's file's fault
        kind = "an exported program (torch.export.save)" if path.suffix == ".pt2" else "a TorchScript file"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise MaskError(f"{path} is not {kind} ({reason}); see docs/datasets.md, 'Shape masks for real "
                        f"images'") from None


class ParsingSource:
    """Person masks from a TorchScript parsing model (see the module docstring for the contract)."""

    name = "parsing"

    def __init__(self, checkpoint: str | Path, *, background_class: int = 0, person_classes: Sequence[int] = (),
                 input_size: tuple[int, int] = (512, 256), batch_size: int = 8, device: str | None = None) -> None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise MaskError(f"parsing checkpoint not found: {path}")
        self.device = self._device(device)
        self.model = load_model(path, self.device)
        self.path = path
        self.background_class = int(background_class)
        self.person_classes = tuple(sorted({int(c) for c in person_classes}))
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if min(self.input_size) < 1:
            raise MaskError(f"--input-size must be positive, got {self.input_size}")
        self.batch_size = max(1, int(batch_size))

    @staticmethod
    def _device(name: str | None) -> torch.device:
        if name in (None, "", "auto"):
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise MaskError(f"--device {name!r} is not a device name (cpu, cuda, cuda:1 ...)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise MaskError(f"--device {name}: CUDA is not available on this machine")
        return device

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": str(self.path.resolve()), "background_class": self.background_class,
                "person_classes": list(self.person_classes), "input_size": list(self.input_size)}

    def _person(self, labels: torch.Tensor, classes: int) -> torch.Tensor:
        wanted = self.person_classes or (self.background_class,)
        if max(wanted) >= classes or min(wanted) < 0:
            raise MaskError(f"class {max(wanted)} does not exist: the parsing model outputs {classes} classes")
        if self.person_classes:
            return torch.isin(labels, torch.tensor(self.person_classes, device=labels.device))
        return labels != self.background_class

    @torch.inference_mode()
    def __call__(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        h, w = self.input_size
        batch = torch.stack([to_tensor(img.convert("RGB").resize((w, h), Image.BILINEAR)) for img in images]).to(self.device)
        try:
            output = self.model(batch)
        except Exception as e:  # noqa: BLE001 - a model that cannot take the contract's input
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise MaskError(f"the parsing model failed on a [{len(images)}, 3, {h}, {w}] batch ({reason}); a model "
                            f"exported for fixed shapes needs --input-size and --batch-size equal to them") from None
        logits = first_logits(output)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 4 or logits.shape[0] != len(images):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise MaskError(f"the parsing model must return [B, C, h, w] logits for a [{len(images)}, 3, {h}, {w}] "
                            f"batch; it returned {shape}")
        out = []
        for image, scores in zip(images, logits.float()):
            full = F.interpolate(scores[None], size=(image.height, image.width), mode="bilinear",
                                 align_corners=False)[0]
            out.append(self._person(full.argmax(dim=0), scores.shape[0]).cpu().numpy())
        return out
