"""Pretraining objectives on top of a reidkit backbone: SimCLR, MoCo v2 and identity classification.

Each recipe is an ``nn.Module`` whose ``forward(views, labels)`` returns a dict of named losses; the
backbone's pooled feature (``"pool"``, [B, D], before the BN-neck) feeds a projection head that is thrown
away after pretraining, as in the papers:

- ``simclr``: NT-Xent over the 2B views of a batch (Chen et al., ICML 2020, "A Simple Framework for
  Contrastive Learning of Visual Representations"); negatives are the other views of the same batch. With
  multi-crop (Caron et al., NeurIPS 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
  Assignments", whose appendix applies it to SimCLR), each of M small views per image must also pick its
  image's two full views among the batch's 2B, and the terms are weighted by how many views give them.
- ``moco-v2``: a momentum key encoder and a queue of negatives (Chen et al., 2020, "Improved Baselines with
  Momentum Contrastive Learning"); keys are encoded in two shuffled halves so that BatchNorm statistics
  cannot give the positive away (MoCo's "shuffle BN", on one device).
- ``supervised``: cross-entropy with label smoothing on the BN-neck feature of a labelled source dataset.

Either self-supervised recipe can add a **modality-mean alignment** (``align`` > 0): the squared distance
between the mean L2-normalised pooled feature of each modality in the batch and that of every other, so
that no direction of the feature space says which camera took the image. It reads each image's modality
(which kind of camera took it, known for every image of every dataset) and nothing that links two images;
it assumes only that the cameras see the same population, as the training split of every cross-modality
dataset does. In spirit it is the feature-distribution alignment of domain adaptation (Deep CORAL, Sun &
Saenko, ECCV-W 2016, on the first moment only), applied between modalities.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RECIPES = ("simclr", "moco-v2")

#: the name the backbones are built with: pretraining uses one shared stem, whatever the modality
PRETRAIN_MODALITY = "images"


def projector(dim: int, hidden: int, out: int) -> nn.Sequential:
    """SimCLR's two-layer MLP head with BatchNorm (MoCo v2 uses the same shape)."""
    return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


def _pooled(backbone: nn.Module, images: Tensor) -> Tensor:
    return backbone(images, PRETRAIN_MODALITY)["pool"]


def modality_gap(features: Tensor, modalities: Tensor) -> Tensor:
    """Sum over pairs of modalities present of the squared distance between their mean L2-normalised
    ``features`` ([N, D], rows labelled by ``modalities`` [N]); 0 with fewer than two modalities."""
    f = F.normalize(features.float(), dim=1)
    present = modalities.unique()
    if present.numel() < 2:
        return f.sum() * 0
    means = torch.stack([f[modalities == m].mean(0) for m in present])
    return torch.pdist(means).pow(2).sum()


def _with_gap(losses: dict[str, Tensor], pooled: Tensor, modalities: Tensor | None, align: float,
              views: int) -> dict[str, Tensor]:
    if align > 0 and modalities is not None:
        losses["modality_gap"] = align * modality_gap(pooled, modalities.repeat(views))
    return losses


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """SimCLR's loss: each of the 2B projections must pick its partner among the 2B - 1 others."""
    z = F.normalize(torch.cat([z1, z2]), dim=1).float()
    n = z1.shape[0]
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, target)


def local_to_global(local: Tensor, full: Tensor, temperature: float) -> Tensor:
    """Multi-crop's term: each row of ``local`` ([M x B, d], view-major: row ``i`` shows image ``i mod B``)
    must pick its image's two rows of ``full`` ([2B, d]: every image's first view, then every second) among
    all 2B; the mean cross-entropy of the two positives, whose minimum is log 2."""
    zl = F.normalize(local, dim=1).float()
    zf = F.normalize(full, dim=1).float()
    b = zf.shape[0] // 2
    log_p = F.log_softmax(zl @ zf.T / temperature, dim=1)
    own = (torch.arange(zl.shape[0], device=zl.device) % b).unsqueeze(1)
    return -(log_p.gather(1, own) + log_p.gather(1, own + b)).mean() / 2


class SimCLR(nn.Module):
    def __init__(self, backbone: nn.Module, *, temperature: float = 0.2, hidden: int = 1024, out: int = 128,
                 align: float = 0.0):
        super().__init__()
        self.backbone = backbone
        self.head = projector(backbone.feat_dim, hidden, out)
        self.temperature = temperature
        self.align = align

    def forward(self, views: tuple[Tensor, ...], labels: Tensor | None = None,
                modalities: Tensor | None = None) -> dict[str, Tensor]:
        """``views``: the two full views of a batch, then any small ones (multi-crop), which go through the
        network in a pass of their own (another size, their own BatchNorm statistics)."""
        n = views[0].shape[0]
        pooled = _pooled(self.backbone, torch.cat(views[:2]))
        z = self.head(pooled)
        losses = {"nt_xent": nt_xent(z[:n], z[n:], self.temperature)}
        if len(views) > 2:
            m = len(views) - 2
            local = self.head(_pooled(self.backbone, torch.cat(views[2:])))
            losses = {"nt_xent": losses["nt_xent"] * 2 / (2 + m),
                      "local_nce": local_to_global(local, z, self.temperature) * m / (2 + m)}
        return _with_gap(losses, pooled, modalities, self.align, 2)


class MoCoV2(nn.Module):
    def __init__(self, backbone: nn.Module, *, temperature: float = 0.2, hidden: int = 1024, out: int = 128,
                 queue: int = 4096, momentum: float = 0.99, align: float = 0.0):
        super().__init__()
        self.backbone = backbone
        self.head = projector(backbone.feat_dim, hidden, out)
        self.align = align
        self.key_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.key_head = copy.deepcopy(self.head).requires_grad_(False)
        self.temperature = temperature
        self.momentum = momentum
        self.register_buffer("queue", F.normalize(torch.randn(queue, out), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for online, key in ((self.backbone, self.key_backbone), (self.head, self.key_head)):
            for p, k in zip(online.parameters(), key.parameters()):
                k.mul_(self.momentum).add_(p.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def _keys(self, images: Tensor) -> Tensor:
        order = torch.randperm(images.shape[0], device=images.device)
        halves = [self.key_head(_pooled(self.key_backbone, part)) for part in images[order].chunk(2)]
        keys = torch.empty_like(torch.cat(halves))
        keys[order] = torch.cat(halves)
        return F.normalize(keys.float(), dim=1)

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        from reidkit.distributed import gather_rows

        keys = gather_rows(keys)
        size = self.queue.shape[0]
        ptr = int(self.queue_ptr)
        idx = (ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[idx] = keys[:size].to(self.queue.dtype)
        self.queue_ptr.fill_((ptr + keys.shape[0]) % size)

    def forward(self, views: tuple[Tensor, Tensor], labels: Tensor | None = None,
                modalities: Tensor | None = None) -> dict[str, Tensor]:
        self._momentum_update()
        pooled = _pooled(self.backbone, torch.cat(views))
        q = F.normalize(self.head(pooled).float(), dim=1)
        k = torch.cat([self._keys(views[1]), self._keys(views[0])])  # each view's key is the other view
        positive = (q * k).sum(1, keepdim=True)
        negative = q @ self.queue.clone().T.float()
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
        self._enqueue(k[: views[0].shape[0]])
        return _with_gap({"info_nce": loss}, pooled, modalities, self.align, len(views))


class Supervised(nn.Module):
    """Identity classification on the BN-neck feature (label smoothing 0.1), both views as samples."""

    def __init__(self, backbone: nn.Module, num_ids: int, *, smoothing: float = 0.1):
        super().__init__()
        if num_ids < 2:
            raise ValueError(f"supervised pretraining needs at least 2 identities, got {num_ids}")
        self.backbone = backbone
        self.classifier = nn.Linear(backbone.feat_dim, num_ids, bias=False)
        self.smoothing = smoothing

    def forward(self, views: tuple[Tensor, Tensor], labels: Tensor | None = None,
                modalities: Tensor | None = None) -> dict[str, Tensor]:
        if labels is None:
            raise ValueError("supervised pretraining needs identity labels")
        feats = self.backbone(torch.cat(views), PRETRAIN_MODALITY)["feat"]
        logits = self.classifier(feats).float()
        return {"id": F.cross_entropy(logits, labels.repeat(len(views)), label_smoothing=self.smoothing)}


def build_recipe(mode: str, recipe: str, backbone: nn.Module, *, num_ids: int = 0, temperature: float = 0.2,
                 queue: int = 4096, momentum: float = 0.99, align: float = 0.0) -> nn.Module:
    """The objective for ``mode`` (``self-supervised`` with ``recipe`` and modality-mean alignment weight
    ``align``, or ``supervised``)."""
    if mode == "supervised":
        return Supervised(backbone, num_ids)
    if recipe == "simclr":
        return SimCLR(backbone, temperature=temperature, align=align)
    if recipe == "moco-v2":
        return MoCoV2(backbone, temperature=temperature, queue=queue, momentum=momentum, align=align)
    raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
