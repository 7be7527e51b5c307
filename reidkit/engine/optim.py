"""Optimiser and per-epoch learning-rate schedule from the ``optim`` config section."""
from __future__ import annotations

import math

import torch

from reidkit.config import OptimConfig


def build_optimizer(method: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam or SGD over ``method.param_groups()`` (a group may set its own ``lr``)."""
    groups = method.param_groups()
    if not any(len(list(g["params"])) for g in groups):
        raise ValueError(f"{type(method).__name__} has no trainable parameter")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                           nesterov=True)


def lr_factor(cfg: OptimConfig, epoch: int) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based): linear warm-up, then the schedule."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / cfg.warmup_epochs
    if cfg.schedule == "step":
        return cfg.gamma ** (epoch // cfg.step_size)
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup_epochs, 1)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per epoch by the engine."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(cfg, epoch))
