"""Report plots (matplotlib, no pyplot state): CMC curves, and per-epoch curves of any epoch-record key.

Each curve is the mean over a row's finished runs with a band of ± one sample standard deviation where
there are at least two runs. Only run outputs are plotted; nothing here selects or smooths.
"""
from __future__ import annotations

import io
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reidkit.bench.results import Row, epoch_keys, protocols

_SIZE = (6.4, 3.6)


@dataclass
class Plot:
    """A named figure of a report: ``name`` is a file-name stem, ``title`` its caption."""

    name: str
    title: str
    figure: Figure

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        return buf.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()


def _mean_band(series: Sequence[Sequence[float | None]]) -> tuple[list[int], list[float], list[float]]:
    """x, mean and std (0 where fewer than two values) per position over runs of unequal length."""
    xs, means, stds = [], [], []
    for i in range(max((len(s) for s in series), default=0)):
        values = [s[i] for s in series if i < len(s) and s[i] is not None]
        if values:
            xs.append(i)
            means.append(statistics.fmean(values))
            stds.append(statistics.stdev(values) if len(values) >= 2 else 0.0)
    return xs, means, stds


def _axes(title: str, xlabel: str, ylabel: str):
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"{xlabel}   (lines: mean over runs; bands: ± 1 sample std)", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return fig, ax


def _curve(ax, xs, means, stds, label: str, colour, n: int) -> None:
    ax.plot(xs, means, label=f"{label} (n={n})", color=colour, marker="o" if len(xs) < 25 else None,
            markersize=3)
    if n >= 2:
        ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                        color=colour, alpha=0.15, linewidth=0)


def _colours(rows: Sequence[Row]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {row.label: cmap(i % 10) for i, row in enumerate(rows)}


def cmc_plot(dataset: str, rows: Sequence[Row], protocol: str) -> Plot | None:
    """Mean CMC (%) over ranks 1..K per row for one protocol."""
    fig, ax = _axes(f"CMC, {dataset}: {protocol}", "rank", "matching rate (%)")
    colours = _colours(rows)
    drawn = 0
    for row in rows:
        curves = row.cmc(protocol)
        if not curves:
            continue
        xs, means, stds = _mean_band([[100 * v for v in c] for c in curves])
        _curve(ax, [x + 1 for x in xs], means, stds, row.label, colours[row.label], len(curves))
        drawn += 1
    if not drawn:
        return None
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="lower right")
    return Plot(f"{_slug(dataset)}-cmc-{_slug(protocol)}", f"CMC curves, {dataset}, {protocol}", fig)


def epoch_plot(dataset: str, rows: Sequence[Row], key: str, ylabel: str, *, percent: bool = False
               ) -> Plot | None:
    """Mean of the epoch-record ``key`` per epoch and row (skips rows that never logged it)."""
    fig, ax = _axes(f"{ylabel} per epoch, {dataset}", "epoch", ylabel)
    colours = _colours(rows)
    drawn = 0
    scale = 100.0 if percent else 1.0
    for row in rows:
        series = [[None if v is None else scale * v for v in s] for s in row.epoch_series(key)]
        series = [s for s in series if any(v is not None for v in s)]
        if not series:
            continue
        xs, means, stds = _mean_band(series)
        _curve(ax, xs, means, stds, row.label, colours[row.label], len(series))
        drawn += 1
    if not drawn:
        return None
    ax.legend(fontsize=7)
    return Plot(f"{_slug(dataset)}-epochs-{_slug(key)}", f"{ylabel} per epoch, {dataset}", fig)


def report_plots(tables: dict[str, list[Row]], split: str = "test") -> list[Plot]:
    """Every plot of a report: per dataset, CMC per protocol, then the split's mAP (when the runs logged
    it per epoch: ``eval_*`` for the test split, ``val_*`` for the validation split), pseudo-label ARI and
    cluster counts per epoch."""
    prefix = "val_" if split == "validation" else "eval_"
    plots: list[Plot] = []
    for dataset, rows in tables.items():
        for protocol in protocols(rows):
            plots.append(cmc_plot(dataset, rows, protocol))
        for key in epoch_keys(rows, prefix=prefix):
            name = key[len(prefix):-len("_mAP")]
            if name == "mean":
                continue
            plots.append(epoch_plot(dataset, rows, key, f"{split} mAP (%) {name}", percent=True))
        plots.append(epoch_plot(dataset, rows, "label_ari", "pseudo-label ARI"))
        plots.append(epoch_plot(dataset, rows, "clusters", "clusters"))
    return [p for p in plots if p is not None]
