"""The architecture of the torchvision ResNet variants reidkit builds: :class:`ResNetSpec` and one constant per
registered variant.

A module of its own because both the network (:mod:`reidkit.models.backbones`) and the weight loader
(:mod:`reidkit.models.weights`, which finds a variant's ImageNet file by ``ResNetSpec.imagenet``) need it,
and neither needs the other's code for it.
"""
from __future__ import annotations

from dataclasses import dataclass

from torchvision.models.resnet import BasicBlock, Bottleneck


@dataclass(frozen=True)
class ResNetSpec:
    """The architecture of one ResNet variant.

    Attributes:
        name: the registry name, used in messages.
        block: torchvision's ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage (layer1..layer4).
        widths: base channels per stage (the output has ``width * block.expansion`` channels).
        stem_width: output channels of conv1.
        imagenet: name of torchvision's weights enum (e.g. ``"ResNet50_Weights"``); None when no
            pretrained weights exist.
    """

    name: str
    block: type
    layers: tuple[int, int, int, int]
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    stem_width: int = 64
    imagenet: str | None = None

    @property
    def feat_dim(self) -> int:
        return self.widths[-1] * self.block.expansion


RESNET18 = ResNetSpec("resnet18", BasicBlock, (2, 2, 2, 2), imagenet="ResNet18_Weights")
RESNET34 = ResNetSpec("resnet34", BasicBlock, (3, 4, 6, 3), imagenet="ResNet34_Weights")
RESNET50 = ResNetSpec("resnet50", Bottleneck, (3, 4, 6, 3), imagenet="ResNet50_Weights")
# Sized for CPU runs on 128x64 images; the measurements behind it are in resnet_mini's docstring.
RESNET_MINI = ResNetSpec("resnet-mini", BasicBlock, (1, 1, 1, 1), widths=(32, 64, 128, 256), stem_width=32)
