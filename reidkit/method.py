"""The method contract: what a re-ID method plugin implements and what the engine hands it.

A method is a ``torch.nn.Module`` with two required hooks:

* ``prepare_epoch(ctx) -> EpochPlan``: once per epoch, before training. All per-epoch state
  (pseudo-labels, memories, proxies) changes here and nowhere else.
* ``training_step(batch) -> dict[str, Tensor]``: named, already-weighted loss terms. The engine sums
  them and logs every key; it never looks at the names.

Optional hooks: ``embed`` (features for evaluation and clustering), ``train_transforms`` (one transform
per view), ``param_groups`` (optimiser groups). A method that reads shape masks says so once, when it is
built (``needs_masks``, ``needs_mask_features``); the engine then checks the dataset in one place.

Unsupervised methods (``uses_labels = False``) cannot see identities: ``EpochContext.ground_truth()``
raises :class:`LabelLeakError`, and batches carry pseudo-labels only.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from reidkit.config import ConfigError
from reidkit.data.roles import check_roles, colour_modality, infer_roles

if TYPE_CHECKING:  # pragma: no cover
    from reidkit.config import ModelConfig
    from reidkit.data.records import Sample


class LabelLeakError(RuntimeError):
    """An unsupervised method asked for identity labels."""


class MissingMasksError(ConfigError):
    """A method declared that it reads shape masks (``needs_masks``, ``needs_mask_features``) and some
    training image has none. Raised by the engine before the first epoch, the one place that checks."""


@dataclass(frozen=True)
class ModalBatch:
    """One modality's part of a training batch.

    Attributes:
        images: [B, 3, H, W] the first view (``views[0]``).
        views: one [B, 3, H, W] tensor per transform returned by ``train_transforms``.
        labels: [B] int64 pseudo-labels from the epoch plan (ground-truth ids for supervised methods).
        indices: [B] int64 positions of the samples in the training set (``EpochContext.train``).
        cameras: [B] int64 camera ids.
        masks: [B, 3, H, W] shape masks when the method asked for them (``needs_masks``), else None.
    """

    images: Tensor
    views: tuple[Tensor, ...]
    labels: Tensor
    indices: Tensor
    cameras: Tensor
    masks: Tensor | None = None

    def to(self, device: torch.device | str) -> ModalBatch:
        def move(t):
            return None if t is None else t.to(device, non_blocking=True)

        return ModalBatch(
            images=move(self.images),
            views=tuple(move(v) for v in self.views),
            labels=move(self.labels),
            indices=move(self.indices),
            cameras=move(self.cameras),
            masks=move(self.masks),
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class EpochPlan:
    """What ``prepare_epoch`` decides for the coming epoch.

    Attributes:
        labels: [N] int64, one label per training sample (``EpochContext.train`` order); -1 excludes a
            sample from this epoch (outlier, refined away).
        sampler: a sampler registered under the ``reidkit.samplers`` entry points: built in are
            ``"per-modality"`` (independent P x K loaders per modality, IMSL/ADCA style) and ``"aligned"``
            (the same P identities in every modality, AGW style); a plugin may add its own.
        info: scalars to log for this epoch (cluster counts, drop rates, timings). Keys are free-form.
        iterations: steps this epoch; None takes ``optim.iterations`` from the config.
        details: what ``prepare_epoch`` found on the way, for callbacks (``on_plan``) and diagnostics, e.g.
            CHCR's label vector after each clustering stage. Free-form; the engine neither logs nor keeps it.
    """

    labels: np.ndarray
    sampler: str = "per-modality"
    info: dict[str, float] = field(default_factory=dict)
    iterations: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.ndim != 1:
            raise ValueError(f"EpochPlan.labels must be 1-D, got shape {self.labels.shape}")
        from reidkit.registry import SAMPLERS

        if self.sampler not in SAMPLERS.names():
            raise ValueError(f"EpochPlan.sampler must be a registered sampler ({', '.join(SAMPLERS.names())}), "
                             f"got {self.sampler!r}")


@dataclass
class BuildContext:
    """What a method may know when it is built (no identities for unsupervised methods).

    Attributes:
        modalities: modality names of the dataset, in a fixed order (e.g. ``("visible", "infrared")``).
        num_train: number of training samples.
        num_train_ids: number of training identities when the dataset states it (a count, not labels;
            methods may use it for defaults such as IMSL's K), else None.
        device: where the method's parameters live.
        image_size: (height, width) of training and test images.
        model: the ``model`` section of the run config.
        build_backbone: builds the configured backbone; keyword overrides replace config fields.
        num_train_masks: how many training images have a shape mask (a method that reads masks needs all
            ``num_train``); lets a method choose its inputs when it is built.
        roles: ``{modality: role}`` as the dataset declares them (``colour``, ``infrared``, ``other``;
            ``reidkit.data.roles``); empty = inferred from the modality names. Ask for
            :attr:`colour_modality` rather than for the name ``visible``.
    """

    modalities: tuple[str, ...]
    num_train: int
    num_train_ids: int | None
    device: torch.device
    image_size: tuple[int, int]
    model: ModelConfig
    build_backbone: Callable[..., torch.nn.Module]
    seed: int = 0
    num_train_masks: int = 0
    roles: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.roles = check_roles(self.roles or infer_roles(self.modalities), self.modalities, "BuildContext")

    @property
    def colour_modality(self) -> str | None:
        """The modality that carries colour (role ``colour``), or None when the dataset has none."""
        return colour_modality(self.roles)


class EpochContext:
    """The engine's services for ``prepare_epoch``.

    Attributes:
        epoch: 0-based epoch index; ``num_epochs`` the total.
        train: the training samples (path, camera, modality; ``person_id`` must not be read by
            unsupervised methods: use ``ground_truth()``, which enforces the rule).
        modalities: modality names; ``modality_ids`` [N] int64 index of each sample's modality in it.
        device: the method's device. ``generator``: a numpy Generator seeded for this epoch.
    """

    def __init__(
        self,
        *,
        epoch: int,
        num_epochs: int,
        train: Sequence[Sample],
        modalities: tuple[str, ...],
        device: torch.device,
        uses_labels: bool,
        extract_fn: Callable[..., Tensor],
        seed: int,
    ) -> None:
        self.epoch = epoch
        self.num_epochs = num_epochs
        self.train = train
        self.modalities = modalities
        self.device = device
        self._uses_labels = uses_labels
        self._extract_fn = extract_fn
        self._features: Tensor | None = None
        index = {m: i for i, m in enumerate(modalities)}
        self.modality_ids = np.fromiter((index[s.modality] for s in train), dtype=np.int64, count=len(train))
        self.cameras = np.fromiter((s.camera for s in train), dtype=np.int64, count=len(train))
        self.generator = np.random.default_rng([seed, epoch])

    def indices_of(self, modality: str) -> np.ndarray:
        """Positions of the training samples of one modality, [N_m] int64."""
        return np.flatnonzero(self.modality_ids == self.modalities.index(modality))

    def features(self) -> Tensor:
        """[N, D] embeddings of every training image with the current model (no grad, eval mode).

        Extracted once per epoch and cached; rows follow ``train`` order.
        """
        if self._features is None:
            self._features = self._extract_fn(view=None, indices=None, source="image")
        return self._features

    def extract(
        self,
        view: Callable[[Tensor], Tensor] | None = None,
        *,
        indices: np.ndarray | None = None,
        source: str = "image",
    ) -> Tensor:
        """Embed a subset or another view of the training set.

        Args:
            view: a function applied to each normalised [B, 3, H, W] test-time batch before ``embed``
                (e.g. a single-channel view for CHCR); None for the plain image.
            indices: positions in ``train`` to embed (default: all).
            source: ``"image"`` or ``"mask"`` (the sample's shape mask, for IMSL's SMR).
        Returns:
            [len(indices), D] features in the order of ``indices``.
        """
        return self._extract_fn(view=view, indices=indices, source=source)

    def ground_truth(self) -> np.ndarray:
        """[N] int64 identity labels; only for methods with ``uses_labels = True``."""
        if not self._uses_labels:
            raise LabelLeakError(
                "this method declares uses_labels = False, so it cannot read identity labels; "
                "set uses_labels = True on a supervised method"
            )
        return np.fromiter((s.person_id for s in self.train), dtype=np.int64, count=len(self.train))


class Method(torch.nn.Module):
    """Base class of every re-ID method plugin. See the module docstring for the contract."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = type(None)
    uses_labels: ClassVar[bool] = False
    #: the shape-mask inputs the method reads, declared once, by the end of ``__init__`` (set them on the
    #: instance when the config decides): ``needs_masks``, training batches carry the masks
    #: (``ModalBatch.masks``); ``needs_mask_features``, ``prepare_epoch`` embeds them
    #: (``ctx.extract(source="mask")``). With either one, the engine checks before training that every
    #: training image has a mask, and raises :class:`MissingMasksError` otherwise.
    needs_masks: ClassVar[bool] = False
    needs_mask_features: ClassVar[bool] = False
    #: nested run-config overrides that make this method's defaults (e.g. ``{"optim": {"lr": 3.5e-4}}``)
    run_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, cfg: Any, build: BuildContext) -> None:
        super().__init__()
        self.cfg = cfg
        self.build = build

    # -- required ---------------------------------------------------------------------------------
    def prepare_epoch(self, ctx: EpochContext) -> EpochPlan:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement prepare_epoch")

    def training_step(self, batch: Mapping[str, ModalBatch]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must implement training_step")

    # -- optional ---------------------------------------------------------------------------------
    def embed(self, images: Tensor, modality: str) -> Tensor:
        """[B, 3, H, W] images of one modality -> [B, D] L2-normalised features.

        The default calls ``self.backbone(images, modality)`` and expects a tensor or a dict with
        ``"feat"``.
        """
        backbone = getattr(self, "backbone", None)
        if backbone is None:
            raise NotImplementedError(f"{type(self).__name__} has no backbone; implement embed()")
        out = backbone(images, modality)
        feat = out["feat"] if isinstance(out, Mapping) else out
        return torch.nn.functional.normalize(feat, dim=1)

    def train_transforms(self, modality: str) -> Sequence[Callable] | None:
        """One transform per view for training images of ``modality``; None = the standard one."""
        return None

    def param_groups(self) -> list[dict]:
        """Optimiser parameter groups; default: every trainable parameter in one group."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]
