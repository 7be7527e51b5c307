"""Pictures of one model (``reidkit eval --checkpoint F --visualize N --output DIR``).

* ``ranked-<protocol>-<page>.png``: N queries, each beside its top-k gallery images across modalities;
  true matches framed green, false ones red (entries the protocol skips, e.g. same identity and camera,
  are skipped here too, so the lists are the ones the metrics score).
* ``embedding-<protocol>.png``: a 2-D map (t-SNE or PCA) of the query and gallery features of up to
  ``max_ids`` identities, coloured by identity with one marker per modality: the modality gap is the
  distance between same-colour clusters of different markers.
* ``ranked.json``: the lists as data (query and gallery paths, identities, distances, match flags).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reidkit.data.records import Sample
from reidkit.evaluation.protocols import ignore_mask

log = logging.getLogger(__name__)

MARKERS = {"visible": "o", "infrared": "^", "thermal": "s", "nir": "D", "tir": "v"}
ROWS_PER_PAGE = 8
_PROJECTION = {"tsne": "t-SNE", "pca": "PCA"}


@dataclass
class RankedList:
    """One query and its top-k gallery entries after the protocol's exclusions."""

    query: Sample
    gallery: list[Sample]
    distances: list[float]
    matches: list[bool]

    def as_dict(self) -> dict[str, Any]:
        s = self.query
        return {"query": s.path, "person_id": s.person_id, "camera": s.camera, "modality": s.modality,
                "gallery": [{"path": g.path, "person_id": g.person_id, "camera": g.camera,
                             "modality": g.modality, "distance": d, "match": m}
                            for g, d, m in zip(self.gallery, self.distances, self.matches)]}


def pick_queries(query: Sequence[Sample], n: int) -> list[int]:
    """``n`` query positions spread evenly over the (sorted) query list: deterministic, no cherry-picking."""
    if n <= 0 or not query:
        return []
    return sorted(set(np.linspace(0, len(query) - 1, num=min(n, len(query))).round().astype(int).tolist()))


def ranked_lists(q_feats: np.ndarray, g_feats: np.ndarray, query: Sequence[Sample], gallery: Sequence[Sample],
                 picks: Sequence[int], *, rule: str, top: int = 10) -> list[RankedList]:
    """Top-``top`` gallery entries (cosine distance of L2-normalised features [Q, D], [G, D]) per pick."""
    ignore = ignore_mask(rule, [query[i] for i in picks], gallery)
    out = []
    for row, i in enumerate(picks):
        dist = 1.0 - g_feats @ q_feats[i]
        dist = np.where(ignore[row], np.inf, dist)
        order = [j for j in np.argsort(dist, kind="stable") if np.isfinite(dist[j])][:top]
        out.append(RankedList(query[i], [gallery[j] for j in order], [float(dist[j]) for j in order],
                              [gallery[j].person_id == query[i].person_id for j in order]))
    return out


def _image(path: str, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((size[1], size[0])))


def ranked_figure(lists: Sequence[RankedList], title: str, size: tuple[int, int] = (128, 64)) -> Figure:
    """One row per query: the query (black frame), then its ranked gallery, green = match, red = not."""
    top = max((len(r.gallery) for r in lists), default=1)
    fig = Figure(figsize=(1.0 * (top + 1) + 0.4, 2.0 * len(lists) + 0.5))
    fig.suptitle(title, fontsize=9)
    axes = fig.subplots(len(lists), top + 1, squeeze=False)
    for r, ranked in enumerate(lists):
        cells = [(ranked.query, "black", f"q {ranked.query.person_id}\n{ranked.query.modality}")]
        cells += [(g, "limegreen" if m else "red", f"{k + 1}: {g.person_id}\n{g.modality}")
                  for k, (g, m) in enumerate(zip(ranked.gallery, ranked.matches))]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.axis("off")
                continue
            sample, colour, label = cells[c]
            ax.imshow(_image(sample.path, size))
            ax.set_xlabel(label, fontsize=6)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(3)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.35 / fig.get_figheight(), bottom=0.04,
                        wspace=0.08, hspace=0.45)
    return fig


def project_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """[N, 2] coordinates by t-SNE (perplexity adapted to N) or PCA (scikit-learn)."""
    if method == "pca" or len(features) < 5:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features)
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def embedding_figure(coords: np.ndarray, samples: Sequence[Sample], title: str) -> Figure:
    """Scatter of [N, 2] ``coords``: colour = identity, marker = modality."""
    from matplotlib import colormaps

    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9)
    ids = sorted({s.person_id for s in samples})
    cmap = colormaps["tab20"]
    colour = {pid: cmap(i % 20) for i, pid in enumerate(ids)}
    for modality in sorted({s.modality for s in samples}):
        rows = [i for i, s in enumerate(samples) if s.modality == modality]
        ax.scatter(coords[rows, 0], coords[rows, 1], c=[colour[samples[i].person_id] for i in rows],
                   marker=MARKERS.get(modality, "x"), s=22, edgecolors="black", linewidths=0.3)
    handles = [Line2D([], [], linestyle="", marker=MARKERS.get(m, "x"), markerfacecolor="lightgray",
                      markeredgecolor="black", label=m) for m in sorted({s.modality for s in samples})]
    ax.legend(handles=handles, title="marker = modality, colour = identity", fontsize=7, title_fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def embedding_subset(query: Sequence[Sample], gallery: Sequence[Sample], max_ids: int
                     ) -> tuple[list[int], list[int]]:
    """Positions in query and gallery of the first ``max_ids`` identities (sorted) present in both."""
    shared = sorted({s.person_id for s in query} & {s.person_id for s in gallery})[:max_ids]
    keep = set(shared)
    return ([i for i, s in enumerate(query) if s.person_id in keep],
            [i for i, s in enumerate(gallery) if s.person_id in keep])


def write_pictures(out: Path, name: str, q_feats: np.ndarray, g_feats: np.ndarray, query: Sequence[Sample],
                   gallery: Sequence[Sample], *, rule: str, queries: int, top: int = 10,
                   embedding: str = "tsne", max_ids: int = 20, seed: int = 0) -> dict[str, Any]:
    """Ranked-list pages and the embedding map of one protocol; returns its part of ``ranked.json``."""
    out.mkdir(parents=True, exist_ok=True)
    lists = ranked_lists(q_feats, g_feats, query, gallery, pick_queries(query, queries), rule=rule, top=top)
    files = []
    for page, start in enumerate(range(0, len(lists), ROWS_PER_PAGE)):
        chunk = lists[start:start + ROWS_PER_PAGE]
        path = out / f"ranked-{name}-{page + 1:02d}.png"
        ranked_figure(chunk, f"{name}: top-{top} (green = same identity, red = other)").savefig(path, dpi=100)
        files.append(path.name)
    qi, gi = embedding_subset(query, gallery, max_ids)
    feats = np.concatenate([q_feats[qi], g_feats[gi]])
    samples = [query[i] for i in qi] + [gallery[i] for i in gi]
    if len(samples) >= 3:
        coords = project_2d(feats, embedding, seed)
        path = out / f"embedding-{name}.png"
        title = (f"{name}: {_PROJECTION[embedding]} of {len(samples)} test features, "
                 f"{len({s.person_id for s in samples})} identities")
        embedding_figure(coords, samples, title).savefig(path, dpi=110)
        files.append(path.name)
    return {"files": files, "queries": [r.as_dict() for r in lists]}


def visualize_checkpoint(checkpoint: str | Path, out: str | Path, *, queries: int = 10,
                         overrides: Sequence[str] = (), device: str | None = None,
                         protocols: Sequence[str] = (), embedding: str = "tsne", top: int = 10,
                         max_ids: int = 20) -> dict[str, Any]:
    """Load the checkpoint's model and dataset, extract test features and write the pictures of every
    selected protocol (first trial); returns the ``ranked.json`` document."""
    from reidkit.engine.checkpoint import write_json
    from reidkit.engine.run import restore_checkpoint

    restored = restore_checkpoint(checkpoint, overrides=overrides, device=device)
    cfg, dataset, trainer = restored.cfg, restored.dataset, restored.trainer()
    names = list(protocols) or list(dataset.protocols)
    unknown = [n for n in names if n not in dataset.protocols]
    if unknown:
        from reidkit.config import ConfigError

        raise ConfigError(f"--protocol {', '.join(unknown)}: not a protocol of {cfg.data.dataset} "
                          f"(has: {', '.join(dataset.protocols)})")
    out = Path(out)
    doc: dict[str, Any] = {"checkpoint": str(checkpoint), "method": cfg.method, "dataset": cfg.data.dataset,
                           "epoch": restored.epoch, "protocols": {}}
    for name in names:
        protocol = dataset.protocols[name]
        gallery = protocol.gallery(0)
        q = trainer.features_fn(protocol.query).cpu().numpy()
        g = trainer.features_fn(gallery).cpu().numpy()
        doc["protocols"][name] = write_pictures(
            out, name, q, g, protocol.query, gallery, rule=protocol.exclusion, queries=queries, top=top,
            embedding=embedding, max_ids=max_ids, seed=cfg.seed)
        log.info("wrote pictures of %s to %s", name, out)
    write_json(out / "ranked.json", doc)
    return doc
