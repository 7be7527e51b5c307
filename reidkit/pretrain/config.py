"""What ``reidkit pretrain`` runs: one frozen dataclass, filled from the command line or from Python."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reidkit.pretrain.augment import AugmentConfig

MODES = ("self-supervised", "supervised")
AMP_MODES = ("auto", "bf16", "off")


class PretrainError(ValueError):
    """A pretraining run that cannot start (bad output path, nothing to resume, bad option)."""


def _check_view_size(option: str, size: tuple[int, ...]) -> None:
    if len(size) != 2 or min(size) < 8:
        raise PretrainError(f"{option} must be HEIGHTxWIDTH, each at least 8, got {size}")


@dataclass(frozen=True)
class PretrainConfig:
    """A pretraining run.

    Corpus (one of): ``folder`` (a plain folder of images) or ``dataset`` (a registered dataset's training
    split at ``root``; for ``synthetic`` without a root, ``preset`` generated with ``world_seed``).

    Attributes:
        output: the weights file to write (``X.pth``; its card is ``X.json``), or a folder, which then gets
            ``backbone.pth`` and ``backbone.json``.
        mode: ``self-supervised`` (identities never read) or ``supervised`` (identity classification).
        recipe: ``simclr`` or ``moco-v2`` (self-supervised mode).
        modalities: keep only these modalities of a dataset (all when empty).
        backbone: a registered backbone; pretraining always uses one shared stem, and the weights file
            loads into any stem layout (the stem is stored as torchvision's ``conv1``/``bn1``).
        height, width: image size the corpus is resized to.
        steps, batch_size: optimisation steps, images per step (each seen in two views).
        lr, weight_decay, warmup: AdamW with linear warmup (``warmup`` steps) then cosine decay to 0.
        temperature, queue, moco_momentum: the contrastive loss's temperature, MoCo's queue length and
            key-encoder momentum.
        modality_align: weight of the modality-mean alignment loss (self-supervised mode; 0 = off):
            the squared distances between the batch's per-modality mean features (recipes.py).
        seed: every random choice (sampling, views, initialisation) follows from it.
        workers: data-loading processes.
        amp: mixed precision. ``auto`` autocasts to bfloat16 on CUDA, and on a CPU whose instructions
            compute in bfloat16 natively (AVX512-BF16 or AMX; about 1.6x faster per step there,
            benchmarks/pretraining.md), float32 elsewhere; ``bf16`` autocasts on any device; ``off`` is
            float32 everywhere. The card records what ran (``precision``).
        channels_last: the backbone and the views in channels-last (NHWC) memory format (faster
            convolutions on CPUs and GPUs; the written weights are stored contiguous either way).
        on_bad_image: ``error`` stops at an unreadable image; ``skip`` checks every image first and drops
            the unreadable ones (listed in the card).
        checkpoint_every: steps between resumable checkpoints.
        low_res, low_res_steps: the first ``low_res_steps`` steps make their views at ``low_res`` (height,
            width) instead of ``height`` x ``width``: cheaper steps, so more of them in the same time, then
            the rest at full size so that the network ends on the size it will be fine-tuned at
            (progressive resizing, as in FFCV's ImageNet recipes and EfficientNetV2, Tan & Le, ICML 2021;
            the train-test resolution effect: Touvron et al., FixRes, NeurIPS 2019). Off by default.
        local_crops, local_size: multi-crop (Caron et al., SwAV, NeurIPS 2020): besides the two views at
            full size, ``local_crops`` small views of each image, cropped from ``augment.local_crop_area`` of
            it and resampled to ``local_size`` (height, width), each of which must pick its image's two full
            views among the batch's (``--recipe simclr`` only). Off (0) by default.
        augment: the views' augmentations.

    The defaults are the recipe of the shipped ``synthetic-pretrained`` weights (benchmarks/pretraining.md).
    """

    output: str
    dataset: str | None = "synthetic"
    root: str | None = None
    folder: str | None = None
    preset: str = "pretrain-world"
    world_seed: int | None = None
    modalities: tuple[str, ...] = ()
    mode: str = "self-supervised"
    recipe: str = "simclr"
    backbone: str = "resnet-mini"
    height: int = 128
    width: int = 64
    steps: int = 8000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    temperature: float = 0.2
    queue: int = 4096
    moco_momentum: float = 0.99
    modality_align: float = 0.0
    seed: int = 0
    workers: int = 2
    on_bad_image: str = "error"
    checkpoint_every: int = 100
    low_res: tuple[int, int] | None = None
    low_res_steps: int = 0
    local_crops: int = 0
    local_size: tuple[int, int] = (64, 32)
    amp: str = "auto"
    channels_last: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        from reidkit.pretrain.recipes import RECIPES

        if self.mode not in MODES:
            raise PretrainError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.recipe not in RECIPES:
            raise PretrainError(f"--recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.amp not in AMP_MODES:
            raise PretrainError(f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.on_bad_image not in ("error", "skip"):
            raise PretrainError(f"--on-bad-image must be error or skip, got {self.on_bad_image!r}")
        if (self.folder is None) == (self.dataset is None):
            raise PretrainError("give exactly one corpus: a dataset (--dataset NAME [--root DIR]) or --folder DIR")
        if self.folder is not None and self.mode == "supervised":
            raise PretrainError("--mode supervised needs identity labels: a labelled --dataset, not a --folder")
        for name in ("steps", "batch_size", "height", "width", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise PretrainError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.low_res_steps < 0 or self.low_res_steps > self.steps:
            raise PretrainError(f"--low-res-steps must be between 0 and --steps ({self.steps}), got {self.low_res_steps}")
        if self.low_res_steps and self.low_res is None:
            raise PretrainError("--low-res-steps needs --low-res HxW")
        if self.low_res is not None:
            _check_view_size("--low-res", self.low_res)
        if self.local_crops < 0:
            raise PretrainError(f"--local-crops must be at least 0, got {self.local_crops}")
        if self.local_crops and (self.mode != "self-supervised" or self.recipe != "simclr"):
            raise PretrainError("--local-crops applies to --mode self-supervised with --recipe simclr only")
        _check_view_size("--local-size", self.local_size)
        if self.modality_align < 0:
            raise PretrainError(f"--modality-align must be at least 0, got {self.modality_align}")
        if self.modality_align > 0 and self.mode == "supervised":
            raise PretrainError("--modality-align applies to --mode self-supervised only")
        if self.batch_size < 4:
            raise PretrainError(f"batch_size must be at least 4, got {self.batch_size}")
        if not self.output:
            raise PretrainError("--output must name a .pth weights file or a folder")

    @property
    def weights_path(self) -> Path:
        """The weights file ``output`` names: itself if it ends in ``.pth``, else ``<output>/backbone.pth``."""
        out = Path(self.output).expanduser()
        return out if out.suffix == ".pth" else out / "backbone.pth"
