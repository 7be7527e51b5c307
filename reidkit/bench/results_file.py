"""The per-run result file: what a finished run leaves for the results page, small enough to commit.

A run folder holds checkpoints, logs and per-epoch records (megabytes, never committed). Its result file
(``benchmarks/results/<suite>/<run id>.json``, written by ``reidkit report --collect``) keeps what the
page needs and nothing that depends on the machine or the moment it was collected, so collecting the
same run again writes the same bytes::

    {"format": 1, "suite": "synthetic", "suite_file": "benchmarks/synthetic.yaml",
     "id": "synthetic-standard/chcr/seed0", "dataset": "synthetic-standard", "method": "chcr",
     "variant": null, "seed": 0, "trial": null, "config_file": null,
     "metrics": {"dataset": "synthetic", "preset": "standard", "wall_time_s": 589.4,
                 "final_model": "last epoch", "epochs": 15, "final_label_ari": 0.53, "cluster_time_s": 11.2,
                 "results": {"<protocol>": {"rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "trials"}}},
     "config": {... the resolved config.yaml without output and seed ...},
     "env": {"git_commit", "git_dirty", "reidkit", "torch", "device", "gpu", "cpu", "cpu_threads", "world_size",
             "weights_card": {"weights", "card_sha256"}}}

Scores are fractions, as in ``metrics.json``. :func:`to_record` reads a file back into the
:class:`~reidkit.bench.results.RunRecord` the report code tabulates (its ``metrics`` rebuilt in the
``metrics.json`` shape, with one epoch record holding the final ARI and the total clustering time).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reidkit.bench.results import RunRecord, final_epoch_value
from reidkit.config import ConfigError
from reidkit.engine.checkpoint import atomic_write

FORMAT = 1
INDEX = "index.json"
_SCORES = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "trials")
_ENV = ("git_commit", "git_dirty", "reidkit", "torch", "device", "gpu", "cpu", "cpu_threads", "world_size")
_DROPPED_CONFIG = ("output", "seed")  # machine-specific or a field of its own


def result_of(record: RunRecord, *, suite: str, suite_file: str | None,
              config_file: str | None) -> dict[str, Any]:
    """The result file's content for a finished run (``record.status == "done"``)."""
    if record.status != "done" or record.metrics is None:
        raise ConfigError(f"{record.id}: only a finished run has a result ({record.status})")
    m = record.metrics
    epochs = m.get("epochs") or []
    cluster = [e["time_cluster_s"] for e in epochs if isinstance(e.get("time_cluster_s"), (int, float))]
    metrics = {
        "dataset": m.get("dataset"), "preset": m.get("preset"), "wall_time_s": m.get("wall_time_s"),
        "final_model": m.get("final_model"), "epochs": len(epochs),
        "final_label_ari": final_epoch_value(m, "label_ari"),
        "cluster_time_s": sum(cluster) if cluster else None,
        "results": {p: {k: v for k, v in (s or {}).items() if k in _SCORES}
                    for p, s in (m.get("results") or {}).items()},
    }
    env = {k: (record.env or {}).get(k) for k in _ENV if (record.env or {}).get(k) is not None}
    card = (record.env or {}).get("weights_card")
    if isinstance(card, dict):  # which weights, by their card's checksum; the file paths are local
        env["weights_card"] = {k: card[k] for k in ("weights", "card_sha256") if k in card}
    config = {k: v for k, v in (record.config or {}).items() if k not in _DROPPED_CONFIG}
    return {"format": FORMAT, "suite": suite, "suite_file": suite_file, "id": record.id,
            "dataset": record.dataset, "method": record.method, "variant": record.variant,
            "seed": record.seed, "trial": record.trial, "config_file": config_file,
            "metrics": metrics, "config": config, "env": env}


def dumps(doc: dict[str, Any]) -> str:
    """The file's text: sorted keys, one key per line, so the same run always gives the same bytes."""
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_if_changed(path: Path, text: str) -> str:
    """Write ``text`` to ``path`` unless it holds it already: ``new``, ``updated`` or ``unchanged``."""
    old = path.read_text() if path.is_file() else None
    if old == text:
        return "unchanged"
    atomic_write(path, lambda f: f.write(text.encode()))
    return "new" if old is None else "updated"


def read_result(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable result file ({e.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "metrics" not in doc:
        raise ConfigError(f"{path}: not a result file of format {FORMAT} "
                          "(written by reidkit report --collect)")
    return doc


def to_record(doc: dict[str, Any], path: Path) -> RunRecord:
    """A finished :class:`RunRecord` whose ``metrics`` has the ``metrics.json`` keys the report reads."""
    m = doc["metrics"]
    last = {k: v for k, v in (("label_ari", m.get("final_label_ari")),
                              ("time_cluster_s", m.get("cluster_time_s"))) if v is not None}
    metrics = {"method": doc["method"], "dataset": m.get("dataset"), "preset": m.get("preset"),
               "seed": doc.get("seed"), "wall_time_s": m.get("wall_time_s"),
               "final_model": m.get("final_model"), "results": m.get("results") or {},
               "epochs": [last] if last else []}
    return RunRecord(id=doc["id"], dataset=doc["dataset"], method=doc["method"], variant=doc.get("variant"),
                     seed=doc.get("seed"), trial=doc.get("trial"), dir=path, status="done", metrics=metrics,
                     config=doc.get("config") or {}, env=doc.get("env") or {})


def load_results(folder: str | Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """``({suite: its index.json}, [result documents])`` of a results folder, in path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"results folder not found: {folder}")
    indexes, docs = {}, []
    for path in sorted(folder.rglob("*.json")):
        if path.name == INDEX:
            index = json.loads(path.read_text())
            indexes[index["suite"]] = index
        else:
            docs.append({**read_result(path), "_path": path})
    return indexes, docs
