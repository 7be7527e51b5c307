"""``data.image_cache_mb``: the benchmark's runs with and without the decoded-image cache, side by side.

For each method, ``--epochs`` epochs of its ``benchmarks/synthetic.yaml`` run (the shipped init, the
preset's recipe, one torch thread, as the suite runs them), once with ``data.image_cache_mb=0`` (every
image decoded at every read, the behaviour before the cache) and once with the default, alternating
between the two so that other load on the machine falls on both alike. It reports each run's wall time,
the mean epoch time after the first (the first fills the cache), the ratio cached / uncached, and checks
that both runs gave the same losses, pseudo-label statistics and scores (the cache must change nothing).

    python benchmarks/image_cache.py --reps 2 --json benchmarks/image-cache.json   # the table of image-cache.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "synthetic.yaml"


def suite_job(method: str, preset: str):
    """The suite's seed-0 job of ``method`` on ``preset``."""
    from reidkit.bench.suite import load_suite

    suite = load_suite(SUITE)
    for job in suite.jobs:
        if job.method == method and job.id.startswith(f"synthetic-{preset}/") and job.id.endswith("/seed0"):
            return job
    raise SystemExit(f"error: {SUITE.name} has no seed-0 job of {method} on {preset}")


def one_run(job, cache_mb: int, epochs: int, out: Path) -> dict:
    from reidkit.engine.run import resolve_run_config, run

    sets = [o for o in job.all_overrides(out) if not o.startswith("output=")]
    sets += [f"optim.epochs={epochs}", f"data.image_cache_mb={cache_mb}", "eval.test=true", f"output={out}"]
    cfg = resolve_run_config(job.method, config_file=job.config_file, overrides=sets)
    t0 = time.perf_counter()
    doc = run(cfg)
    wall = time.perf_counter() - t0
    warm = [e["time_epoch_s"] for e in doc["epochs"][1:]]
    return {"wall_s": wall, "warm_epoch_s": statistics.mean(warm) if warm else float("nan"),
            "epochs": [{k: v for k, v in e.items() if not k.startswith("time_")} for e in doc["epochs"]],
            "results": doc["results"]}


def measure(method: str, preset: str, epochs: int, reps: int, scratch: Path) -> dict:
    job = suite_job(method, preset)
    sizes = {"off": 0, "on": _default_cache_mb()}
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for rep in range(reps):
        for setting in (("off", "on") if rep % 2 == 0 else ("on", "off")):  # alternate which goes first
            mb = sizes[setting]
            runs[setting].append(one_run(job, mb, epochs, scratch / f"{method}-{preset}-{rep}-{mb}"))
    same = all(a["epochs"] == b["epochs"] and a["results"] == b["results"] for a, b in zip(runs["off"], runs["on"]))
    off, on = (statistics.median(r["wall_s"] for r in runs[k]) for k in ("off", "on"))
    off_epoch, on_epoch = (statistics.median(r["warm_epoch_s"] for r in runs[k]) for k in ("off", "on"))
    return {"method": method, "preset": preset, "epochs": epochs, "reps": reps,
            "wall_off_s": off, "wall_on_s": on, "wall_ratio": on / off,
            "epoch_off_s": off_epoch, "epoch_on_s": on_epoch, "epoch_ratio": on_epoch / off_epoch,
            "identical": same}


def _default_cache_mb() -> int:
    from reidkit.config import DataConfig

    return DataConfig().image_cache_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["chcr", "imsl", "dc-baseline"])
    parser.add_argument("--preset", default="standard", choices=("standard", "standard-nir"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=1, help="runs per setting (alternating)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="reidkit-image-cache-") as tmp:
        for method in args.methods:
            rows.append(measure(method, args.preset, args.epochs, args.reps, Path(tmp)))
    from reidkit.hardware import cpu_name

    print(f"torch {torch.__version__}, 1 thread, {cpu_name() or platform.processor()}, "
          f"load {os.getloadavg()[0]:.2f} at the end")
    print("| method | preset | epochs | run, no cache (s) | run, cache (s) | ratio | epoch after the first, "
          "no cache (s) | cache (s) | ratio | same results |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['method']} | `{r['preset']}` | {r['epochs']} | {r['wall_off_s']:.1f} | {r['wall_on_s']:.1f} | "
              f"{r['wall_ratio']:.2f} | {r['epoch_off_s']:.1f} | {r['epoch_on_s']:.1f} | {r['epoch_ratio']:.2f} | "
              f"{'yes' if r['identical'] else '**no**'} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "cpu": cpu_name(), "rows": rows},
                                              indent=2) + "\n")
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
