"""Clustering benchmark: the dense k-reciprocal Jaccard + DBSCAN lineage vs reidkit.cluster.

Every (size, implementation) runs in its own process, on the same features, so that wall time and peak
RSS are those of that implementation alone (plus the interpreter, torch and the features, which both
pay). Implementations:

* ``reference``: the dense lineage of tests/test_cluster_lineage.py (exact float32 torch kNN, per-row
  loops, N x N float32 matrices, sklearn DBSCAN on the dense matrix);
* ``ours``: reidkit.cluster (``knn`` + ``jaccard_distance(max_distance=eps)`` + ``dbscan``, exactly what
  ``pseudo_labels`` runs), each step timed;
* ``fp32-knn``: the float32 floor, chunked ``x @ x.T`` + ``topk`` (``reidkit.cluster.knn.chunked_knn``);
* ``ivf-<nprobe>`` / ``hnsw``: ours with faiss approximate neighbours (``--ann``).

Features: ``reidkit.cluster.synthetic.structured_features`` (395 identities, visible/infrared offset,
outliers), L2-normalised float32, written once per size to ``--workdir`` (not the repository).

    python benchmarks/clustering.py --sizes 11909 22258 34167 --output benchmarks/clustering.md
    python benchmarks/clustering.py --ann --sizes 34167 --output benchmarks/cluster_ann.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPS, MIN_SAMPLES, K1, K2 = 0.6, 4, 30, 6
SAMPLE = 2000  # query rows with float32 truth for the recall of approximate searches at large N


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak RSS of this process image. Not ``ru_maxrss``: across fork + exec Linux carries the parent's
    peak into the child's ``ru_maxrss``, so a worker would report the driver's peak."""
    return _status_mb("VmHWM")


# -- worker ------------------------------------------------------------------------------------------------


def worker(impl: str, features_path: str, labels_path: str, json_path: str) -> None:
    import numpy as np
    import torch  # imported by every implementation; counted in the baseline

    load_start = os.getloadavg()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime  # CPU seconds of the imports, excluded
    rss_imports = rss_mb()
    x = np.load(features_path)
    rss_loaded = rss_mb()
    times: dict[str, float] = {}
    labels = None
    extra: dict = {}

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t
        return out

    if impl == "reference":
        from sklearn.cluster import DBSCAN

        sys.path.insert(0, str(ROOT / "tests"))
        from test_cluster_lineage import lineage_jaccard, lineage_ranks

        ranks = timed("knn", lambda: lineage_ranks(x, K1))
        dist = timed("jaccard", lambda: lineage_jaccard(x, K1, K2, ranks=ranks))
        labels = timed("dbscan", lambda: DBSCAN(eps=EPS, min_samples=MIN_SAMPLES, metric="precomputed",
                                                n_jobs=1).fit_predict(dist))
    elif impl == "exact-sample":  # float32 truth for a fixed sample of query rows (recall at large N)
        import torch as _torch

        rows = np.sort(np.random.default_rng(0).choice(len(x), size=min(len(x), SAMPLE), replace=False))
        xt = _torch.from_numpy(x)
        top = timed("knn", lambda: _torch.cat([(xt[_torch.from_numpy(rows[s:s + 256])] @ xt.T).topk(K1, dim=1).indices
                                              for s in range(0, len(rows), 256)]))
        np.save(labels_path.replace(".labels.npy", ".knn.npy"), top.numpy())
        np.save(labels_path.replace(".labels.npy", ".rows.npy"), rows)
    elif impl == "fp32-knn":
        from reidkit.cluster.knn import chunked_knn

        nb = timed("knn", lambda: chunked_knn(x, K1))
        np.save(labels_path.replace(".labels.npy", ".knn.npy"), nb.indices)
    else:
        from reidkit.cluster import dbscan, faiss_knn, jaccard_distance, knn

        if impl == "ours":
            nb = timed("knn", lambda: knn(x, K1))
        elif impl.startswith("ivf-"):
            nb = timed("knn", lambda: faiss_knn(x, K1, index="ivf", nprobe=int(impl.split("-")[1])))
        elif impl == "hnsw":
            nb = timed("knn", lambda: faiss_knn(x, K1, index="hnsw"))
        else:
            raise SystemExit(f"unknown implementation {impl}")
        np.save(labels_path.replace(".labels.npy", ".knn.npy"), nb.indices)
        dist = timed("jaccard", lambda: jaccard_distance(x, k1=K1, k2=K2, neighbors=nb, max_distance=EPS))
        extra["stored_pairs_per_row"] = dist.nnz / len(x)
        labels = timed("dbscan", lambda: dbscan(dist, eps=EPS, min_samples=MIN_SAMPLES))
    if labels is not None:
        np.save(labels_path, np.asarray(labels, dtype=np.int64))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = dict(impl=impl, n=int(x.shape[0]), dim=int(x.shape[1]), times=times, total=sum(times.values()),
                  cpu_s=usage.ru_utime + usage.ru_stime - cpu_start,
                  peak_rss_mb=peak_rss_mb(), rss_after_imports_mb=rss_imports, rss_after_load_mb=rss_loaded,
                  loadavg_start=load_start, loadavg_end=os.getloadavg(), threads=torch.get_num_threads(), **extra)
    Path(json_path).write_text(json.dumps(result))


# -- driver ------------------------------------------------------------------------------------------------


def available_gb() -> float:
    with open("/proc/meminfo") as fh:
        info = {line.split(":")[0]: int(line.split()[1]) for line in fh}
    return info["MemAvailable"] / 2 ** 20


def features_file(workdir: Path, n: int, dim: int, seed: int, identities: int = 395) -> Path:
    tag = "" if identities == 395 else f"_i{identities}"
    path = workdir / f"features_n{n}_d{dim}_s{seed}{tag}.npy"
    if not path.exists():
        import numpy as np

        from reidkit.cluster.synthetic import structured_features

        data = structured_features(n, dim, identities=identities, seed=seed)
        np.save(path, data.features)
        np.save(path.with_suffix(".ids.npy"), data.identities)
    return path


def run(impl: str, path: Path, workdir: Path, timeout: int) -> dict | None:
    stem = workdir / f"{path.stem}.{impl}"
    cmd = [sys.executable, __file__, "--worker", impl, str(path), f"{stem}.labels.npy", f"{stem}.json"]
    print(f"  {impl}: running (available memory {available_gb():.1f} GB, load {os.getloadavg()[0]:.1f})",
          flush=True)
    proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        return None
    result = json.loads(Path(f"{stem}.json").read_text())
    print(f"  {impl}: {result['total']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def reference_fits(n: int) -> bool:
    need = 2.4 * n * n * 4 / 2 ** 30 + 2.0  # two live N x N float32 matrices, their temporaries, baseline
    return available_gb() > need


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", nargs=4, metavar=("IMPL", "FEATURES", "LABELS", "JSON"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[11909, 22258, 34167])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--identities", type=int, default=395, help="identities in the synthetic features")
    parser.add_argument("--impls", nargs="+", default=["ours", "fp32-knn", "reference"])
    parser.add_argument("--ann", action="store_true", help="approximate-kNN comparison instead")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/reidkit-cluster-bench"))
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from the runs in --workdir")
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    impls = args.impls
    if args.ann and impls == parser.get_default("impls"):
        impls = ["ours", "ivf-8", "ivf-32", "hnsw"]
    results = []
    for n in args.sizes:
        path = features_file(args.workdir, n, args.dim, args.seed, args.identities)
        print(f"N = {n}: {path}", flush=True)
        for impl in impls:
            if args.report_only:
                stored = args.workdir / f"{path.stem}.{impl}.json"
                if stored.exists():
                    results.append((n, impl, json.loads(stored.read_text())))
                continue
            if impl == "reference" and not reference_fits(n):
                print(f"  reference: skipped, {available_gb():.1f} GB available", flush=True)
                continue
            result = run(impl, path, args.workdir, args.timeout)
            if result is not None:
                results.append((n, impl, result))
    report = (ann_report if args.ann else main_report)(results, args)
    print(report)
    if args.output:
        args.output.write_text(report)


def _stem(args, n: int) -> str:
    return f"features_n{n}_d{args.dim}_s{args.seed}" + ("" if args.identities == 395 else f"_i{args.identities}")


def _labels(args, n: int, impl: str):
    import numpy as np

    path = args.workdir / f"{_stem(args, n)}.{impl}.labels.npy"
    return np.load(path) if path.exists() else None


def _environment(results) -> str:
    import numpy
    import scipy
    import sklearn
    import torch

    with open("/proc/cpuinfo") as fh:
        cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
    loads = [r["loadavg_start"][0] for _, _, r in results] + [r["loadavg_end"][0] for _, _, r in results]
    return (f"Host: {cpu}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM, "
            f"shared with other users: 1-minute load average {min(loads):.1f}-{max(loads):.1f} during the runs. "
            f"Python {platform.python_version()}, torch {torch.__version__} ({results[0][2]['threads']} threads), "
            f"numpy {numpy.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}.")


def _command() -> str:
    return "python benchmarks/clustering.py " + " ".join(a for a in sys.argv[1:] if a != "--report-only")


def main_report(results, args) -> str:
    from sklearn.metrics import adjusted_rand_score

    rows = [("| N | implementation | kNN s | Jaccard s | DBSCAN s | total s | CPU s | peak RSS MB | RSS after load MB | "
             "clusters / outliers | ARI vs reference |"), "|" + "---|" * 11]
    by = {(n, impl): r for n, impl, r in results}
    for n, impl, r in results:
        t = r["times"]
        labels = _labels(args, n, impl)
        ref = _labels(args, n, "reference")
        ari = f"{adjusted_rand_score(ref, labels):.5f}" if labels is not None and ref is not None and impl != "reference" else "-"
        counts = f"{labels.max() + 1} / {(labels < 0).sum()}" if labels is not None else "-"
        cpu = f"{r['cpu_s']:.0f}" if "cpu_s" in r else "-"
        rows.append(f"| {n} | {impl} | {t.get('knn', 0):.1f} | {t.get('jaccard', 0):.1f} | {t.get('dbscan', 0):.1f} | "
                    f"{r['total']:.1f} | {cpu} | {r['peak_rss_mb']:.0f} | {r['rss_after_load_mb']:.0f} | {counts} | {ari} |")
    ratios = ["", ("| N | wall time ours / reference | CPU time ours / reference | peak RSS ours / reference | "
                   "RSS above load, ours / reference | ours: Jaccard + DBSCAN vs kNN | fp32 kNN floor vs ours kNN |"),
              "|" + "---|" * 7]
    for n in args.sizes:
        ours, ref, floor = by.get((n, "ours")), by.get((n, "reference")), by.get((n, "fp32-knn"))
        if ours is None:
            continue
        jd = ours["times"]["jaccard"] + ours["times"]["dbscan"]
        tail = [f"{jd:.1f} s vs {ours['times']['knn']:.1f} s",
                f"{floor['times']['knn']:.1f} s vs {ours['times']['knn']:.1f} s" if floor else "-"]
        if ref:
            above = (ours["peak_rss_mb"] - ours["rss_after_load_mb"]) / (ref["peak_rss_mb"] - ref["rss_after_load_mb"])
            cpu = f"1/{ref['cpu_s'] / ours['cpu_s']:.1f}" if "cpu_s" in ref and "cpu_s" in ours else "-"
            head = [f"1/{ref['total'] / ours['total']:.1f}", cpu, f"1/{ref['peak_rss_mb'] / ours['peak_rss_mb']:.1f}",
                    f"1/{1 / above:.0f}"]
        else:
            head = ["-"] * 4
        ratios.append(f"| {n} | " + " | ".join(head + tail) + " |")
    return "\n".join(["# Clustering benchmark: dense lineage vs reidkit.cluster", "",
                      (f"Command: `{_command()}` (D = {args.dim}, k1 = {K1}, k2 = {K2}, eps = {EPS}, "
                       f"min_samples = {MIN_SAMPLES})."), "", _environment(results), "", *rows, *ratios, ""])


def ann_report(results, args) -> str:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from reidkit.cluster import knn_recall

    rows = [("| N | kNN | kNN s | recall@30 vs exact | Jaccard + DBSCAN s | total s | peak RSS MB | "
             "clusters / outliers | ARI vs exact labels |"), "|" + "---|" * 9]
    for n, impl, r in results:
        if impl == "exact-sample":
            continue
        stem = args.workdir / _stem(args, n)
        found = np.load(f"{stem}.{impl}.knn.npy")
        if Path(f"{stem}.ours.knn.npy").exists():
            recall = f"{knn_recall(found, np.load(f'{stem}.ours.knn.npy')):.4f}"
        elif Path(f"{stem}.exact-sample.knn.npy").exists():
            sample = np.load(f"{stem}.exact-sample.rows.npy")
            recall = f"{knn_recall(found[sample], np.load(f'{stem}.exact-sample.knn.npy')):.4f} ({len(sample)} rows)"
        else:
            recall = "-"
        labels, base = _labels(args, n, impl), _labels(args, n, "ours")
        ari = f"{adjusted_rand_score(base, labels):.4f}" if base is not None else "-"
        rows.append(f"| {n} | {'exact (ours)' if impl == 'ours' else impl} | {r['times']['knn']:.1f} | {recall} | "
                    f"{r['times']['jaccard'] + r['times']['dbscan']:.1f} | {r['total']:.1f} | {r['peak_rss_mb']:.0f} | "
                    f"{labels.max() + 1} / {(labels < 0).sum()} | {ari} |")
    return "\n".join(["# Approximate kNN for clustering", "", f"Command: `{_command()}`.", "", _environment(results), "",
                      *rows, ""])


if __name__ == "__main__":
    main()
