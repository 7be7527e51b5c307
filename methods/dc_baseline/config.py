"""``method_args`` of ``dc-baseline`` and the method's run defaults.

The run defaults are sized for a CPU run on the synthetic ``small``/``standard`` presets (128x64 images,
``resnet-mini`` from the shipped ``synthetic-pretrained`` init). The real-data settings (ResNet-50 from
ImageNet, 288x144, the AGW schedule) live in ``configs/dc-baseline/_gpu.yaml`` and the dataset files beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

from reidkit.config import option

from .gaussian import FORMS
from .triplet import KINDS, SCOPES

#: per-form default of ``variance_eps``: BN-neck features have unit per-dimension batch variance, so 0.1
#: bounds KL's variance ratios (and its 1/variance gradients) at about 10x; W2 needs no such floor
DEFAULT_VARIANCE_EPS = {"w2": 1e-5, "kl": 0.1}


@dataclass(frozen=True)
class DCBaselineConfig:
    # intra-modality enhancing module (IME)
    branches: bool = option(
        True, help="a copy of layer4 (+ pooling, BN-neck, classifier) per modality, trained with identity "
                   "and intra-modality triplet losses")
    branch_weight: float = option(1.0, ge=0, help="weight of each branch's identity + intra-triplet losses")
    # modality-invariant module (MIM)
    consistency: str = option(
        "w2", choices=(*FORMS, "off"),
        help="cross-modality distribution-consistency loss between per-identity diagonal Gaussians: "
             "symmetric KL (kl), squared 2-Wasserstein (w2), or off")
    consistency_weight: float = option(0.5, ge=0, help="lambda_g, weight of the consistency loss")
    consistency_space: str = option(
        "neck", choices=("neck", "normalized"),
        help="features the Gaussians are fitted to: the BN-neck output, or it L2-normalised")
    variance_eps: float | None = option(
        None, gt=0, help="added to every per-identity variance; None = 1e-5 for w2 and "
                         "0.1 for kl, whose 1/variance terms diverge with 1e-5 (benchmarks/dc-baseline.md)")
    # shared-feature losses
    label_smoothing: float = option(0.1, ge=0, lt=1, help="identity cross-entropy label smoothing")
    triplet: str = option(
        "weighted", choices=KINDS,
        help="weighted: AGW's weighted-regularisation triplet (margin-free); hard: batch-hard with a margin")
    triplet_margin: float = option(0.3, gt=0, help="margin of the batch-hard triplet")
    triplet_scope: str = option(
        "all", choices=SCOPES[:2],
        help="shared-feature triplet pairs: all (any modality) or cross (other modalities only)")
    # augmentation
    channel_exchange_p: float = option(
        0.5, ge=0, le=1, help="probability that a visible training image is replaced by one of its channels "
                              "(R, G, B) or its grayscale, copied to all three (CAJ's channel "
                              "augmentation, Ye et al. ICCV 2021); 0 = off (plain AGW). Its effect: "
                              "benchmarks/dc-baseline.md")
    # test-time feature and optimisation
    test_feature: str = option(
        "shared", choices=("shared", "shared+branch"),
        help="the shared feature, or it concatenated with the branch feature of the image's own modality")
    backbone_lr: float | None = option(
        None, gt=0, help="learning rate of the backbone convolutions (stems, trunk, branch stages); "
                         "None = optim.lr. AGW with ImageNet weights: optim.lr / 10")

    def resolved_variance_eps(self) -> float:
        """``variance_eps``, or the default of the chosen consistency form."""
        if self.variance_eps is not None:
            return self.variance_eps
        return DEFAULT_VARIANCE_EPS.get(self.consistency, 1e-5)


#: CPU-friendly defaults for the synthetic presets: the budget of benchmarks/synthetic.yaml (15 epochs x 50
#: steps of 8 identities x 4 images per modality), AGW's SGD recipe with warm-up and two decays scaled to it.
#: At this budget it is not converged (a doubled schedule gains points from random weights; docs/notes/
#: dc-baseline-record.md), the same budget the other methods get. Only what differs from the core
#: defaults (reidkit/config.py: 128 x 64 images, 32 per modality per step, 50 steps per epoch, momentum 0.9,
#: weight decay 5e-4, decays by 0.1) is here; configs/dc-baseline/_gpu.yaml sets the real-data values.
RUN_DEFAULTS = {
    "model": {"weights": "synthetic-pretrained", "stems": "per-modality"},
    "data": {"workers": 0},
    "optim": {"optimizer": "sgd", "lr": 0.1, "epochs": 15, "warmup_epochs": 2, "schedule": "multistep",
              "milestones": [10, 13]},
}
