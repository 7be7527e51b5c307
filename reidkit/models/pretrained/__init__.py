"""Backbone weights shipped inside the package, selected by name with ``model.weights: NAME``.

``synthetic-pretrained``: resnet-mini pretrained self-supervised (SimCLR-style, colour-invariant views) on
the unlabeled images of a synthetic world that no preset or benchmark uses (``pretrain-world``, seed 1000),
without any link between modalities. It is the default initialisation of every synthetic run. The command
that made it, and how to make it again, are in docs/pretraining.md; its card (``synthetic-pretrained.json``)
records the corpus, recipe, steps, seed and commit.

Each file's sha256 is checked when it is loaded, so a damaged or replaced file is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Shipped:
    """A weights file inside this folder: its name, expected sha256 and the backbone it is made for."""

    file: str
    sha256: str
    backbone: str

    @property
    def path(self) -> Path:
        return Path(__file__).resolve().parent / self.file


#: ``model.weights`` name -> the shipped file
SHIPPED: dict[str, Shipped] = {
    "synthetic-pretrained": Shipped("synthetic-pretrained.pth", "b5bf0204abef676386fd3aa283b29ccca77844b98de156ada339771048d0ac99", "resnet-mini"),
}
