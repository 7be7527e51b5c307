"""``reidkit pretrain``: pretraining a backbone on unlabeled images (or a labelled source dataset).

Every clustering-based unsupervised re-ID method starts from pretrained weights (ImageNet, LUPerson, CLIP);
this package makes such weights from one's own images, self-supervised, so that the features carry
similarity across modalities without ever being told which images show the same person. The result is a
backbone weights file that ``model.weights: PATH`` loads, with a JSON card beside it. docs/pretraining.md
explains the recipe and how the shipped ``synthetic-pretrained`` weights were made.

>>> from reidkit.pretrain import PretrainConfig, pretrain
>>> card = pretrain(PretrainConfig(output="ssl.pth", steps=2000))            # doctest: +SKIP
"""
from reidkit.pretrain.augment import AugmentConfig
from reidkit.pretrain.config import PretrainConfig, PretrainError
from reidkit.pretrain.train import pretrain

__all__ = ["AugmentConfig", "PretrainConfig", "PretrainError", "pretrain"]
