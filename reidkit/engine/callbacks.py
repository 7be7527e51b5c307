"""The engine's standard callbacks: metrics log, checkpoint, progress display."""
from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reidkit.engine.checkpoint import save_checkpoint
from reidkit.engine.trainer import Callback, Trainer


class MetricsLog(Callback):
    """Appends one JSON line per epoch to ``metrics.jsonl`` (flushed and fsynced)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_fit_start(self, trainer: Trainer) -> None:
        # a resumed run rewrites the file from its checkpoint's history, dropping lines of an epoch
        # that was logged but never checkpointed
        self.path.write_text("".join(json.dumps(r) + "\n" for r in trainer.history))

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: Mapping[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(dict(record)) + "\n")


class Checkpoint(Callback):
    """Writes ``checkpoints/last.pt`` atomically after every epoch (and on a requested stop)."""

    def __init__(self, run_dir: str | Path, extra: Mapping[str, Any] | None = None) -> None:
        self.path = Path(run_dir) / "checkpoints" / "last.pt"
        self.extra = dict(extra or {})

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: Mapping[str, Any]) -> None:
        save_checkpoint(self.path, {**self.extra, **trainer.state_dict()})


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


class RichProgress(Callback):
    """Epoch and step progress bars (losses, ETA) and one line per epoch under a single header.

    The header and a legend of its short names are printed once, at the first epoch; every column is
    :data:`WIDTH` characters, so a line fits in 100 columns.
    """

    #: metrics.jsonl key -> (column name, legend text)
    COLUMNS = {
        "epoch": ("epoch", ""),
        "loss": ("loss", "summed training loss"),
        "clusters": ("clusters", "pseudo-identities"),
        "outliers": ("outliers", "share of images left out"),
        "label_ari": ("ARI", "pseudo-labels vs hidden identities (diagnostic only)"),
        "mixed_cluster_share": ("mixed", "share of clusters holding several modalities"),
        "cross_pair_precision": ("xprec", "cross-modality pairs in a cluster that are one person"),
        "val_mean_mAP": ("val mAP", "validation split"),
        "time_prepare_s": ("prep s", "clustering / preparing time"),
        "time_train_s": ("train s", "training time"),
    }
    WIDTH = 9

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console,
                                 transient=False)
        self.epochs = None
        self.steps = None
        self.header: list[str] | None = None
        self.t0 = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.progress.start()
        total = trainer.cfg.optim.epochs
        self.epochs = self.progress.add_task("epochs", total=total, completed=trainer.start_epoch, info="")
        self.t0 = time.perf_counter()

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self.steps is not None:
            self.progress.remove_task(self.steps)
        self.steps = self.progress.add_task(f"epoch {epoch}", total=trainer.cfg.optim.iterations,
                                            info="clustering / preparing")

    def on_step_end(self, trainer: Trainer, step: int, losses: Mapping[str, float]) -> None:
        info = " ".join(f"{k}={v:.3f}" for k, v in losses.items())
        self.progress.update(self.steps, completed=step + 1, info=info)

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: Mapping[str, Any]) -> None:
        self.progress.update(self.epochs, advance=1)
        cols = [c for c in self.COLUMNS if c in record]
        console = self.progress.console
        if self.header != cols:
            self.header = cols
            legend = "; ".join(f"{self.COLUMNS[c][0]}: {self.COLUMNS[c][1]}" for c in cols if self.COLUMNS[c][1])
            console.print(legend, style="dim", markup=False, highlight=False)
            console.print("".join(self.COLUMNS[c][0].rjust(self.WIDTH) for c in cols), style="bold",
                          markup=False, highlight=False)
        console.print("".join(_fmt(record[c])[: self.WIDTH - 1].rjust(self.WIDTH) for c in cols),
                      markup=False, highlight=False)

    def on_fit_end(self, trainer: Trainer, results: Mapping[str, Any]) -> None:
        self.stop()

    def stop(self) -> None:
        self.progress.stop()
