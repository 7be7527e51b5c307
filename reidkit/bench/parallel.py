"""Several runs of a suite at once (``reidkit bench --jobs N``), each in a process of its own.

Small models on a CPU do not scale with threads: two runs at one thread each finish sooner than the same two
runs one after the other at two threads. ``--jobs N`` gives each of N worker processes an equal share of
the CPU cores (``torch.set_num_threads``) and, on a machine with at least N GPUs and ``--device cuda``, a GPU
of its own (``cuda:<worker>``). Workers are started with ``spawn``, so each run begins from a clean
interpreter as it would from ``reidkit run``.

The suite's bookkeeping (index, ``failed.json``, progress) stays in the calling process. Runs write their
own folders as they do one at a time (lock, config, log, checkpoints, metrics), so a suite started with
``--jobs 2`` can be continued with ``--jobs 1`` and the other way round. Ctrl-C reaches the workers too: each
stops after its current epoch with a checkpoint, as a single run does, and the suite stops. SIGTERM sent to
the suite's process alone (``kill``, ``pkill -f "reidkit bench"``, a job scheduler) is passed on to the
workers, so they stop the same way instead of running on without the suite.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

_WORKER_DEVICE: str | None = None


def cpu_share(jobs: int, cpus: int | None = None) -> int:
    """Torch threads per worker: the machine's cores (those this process may use) split evenly, at least 1."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // jobs)


def worker_device(device: str | None, worker: int, jobs: int) -> str | None:
    """The device of worker ``worker``: its own GPU when ``device`` asks for CUDA without an index and there
    are at least ``jobs`` GPUs, else ``device`` unchanged (runs then share it)."""
    if device not in ("cuda", "auto", None):
        return device
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() >= jobs:
        return f"cuda:{worker}"
    return device


def _init_worker(threads: int, devices: Any, device: str | None, jobs: int) -> None:
    global _WORKER_DEVICE
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    _WORKER_DEVICE = worker_device(device, devices.get(), jobs)
    # runs log to their own log.txt; on the shared terminal a worker shows warnings and errors only (the
    # handler's level, since a run raises its loggers' levels to INFO for log.txt)
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def _run_one(run_fn, job, run_dir: Path) -> dict[str, Any]:
    """One run in a worker; errors come back as data (with their traceback) instead of exceptions."""
    from reidkit.bench.runner import _first_line

    t0 = time.perf_counter()
    try:
        doc = run_fn(job, run_dir, device=_WORKER_DEVICE, callbacks=[])
    except Exception as e:
        return {"error": _first_line(e), "traceback": traceback.format_exc(), "elapsed_s": time.perf_counter() - t0}
    return {"doc": {k: doc.get(k) for k in ("wall_time_s", "stopped_early") if k in doc}}


@contextmanager
def forward_sigterm() -> Iterator[None]:
    """While inside: SIGTERM to this process is sent on to its live child processes (the workers, which stop
    after their epoch) and raises KeyboardInterrupt here, so the suite waits for them as after Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        for child in multiprocessing.active_children():
            if child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def run_parallel(selected, book, *, run_fn, device: str | None, jobs: int) -> None:
    """Run the jobs of ``selected`` that ``book.begin`` accepts, ``jobs`` at a time, recording each outcome
    in ``book`` (a :class:`reidkit.bench.runner.Bookkeeper`)."""
    ctx = multiprocessing.get_context("spawn")
    threads = cpu_share(jobs)
    devices = ctx.Queue(maxsize=jobs)  # each worker takes one index once, at start
    for i in range(jobs):
        devices.put(i)
    log.info("running %d runs at once, %d torch thread(s) each", jobs, threads)
    pending = iter(selected)
    running: dict[Future, Any] = {}
    stop = False
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, devices, device, jobs)) as pool, forward_sigterm():
        try:
            while True:
                while not stop and len(running) < jobs:
                    job = next(pending, None)
                    if job is None:
                        break
                    if book.begin(job):
                        running[pool.submit(_run_one, run_fn, job, book.out / job.id)] = job
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    outcome = future.result()
                    if "error" in outcome:
                        book.failed(job, outcome["error"], outcome["traceback"], outcome["elapsed_s"])
                    elif not book.done(job, outcome["doc"]):
                        stop = True  # stopped by request: let the others finish their epoch, start no more
        except KeyboardInterrupt:
            # the workers got the same Ctrl-C (or the SIGTERM passed on) and stop after their epoch; wait for
            # them to write it
            for future, job in running.items():
                try:
                    outcome = future.result()
                except BaseException:  # a worker that died: its folder tells its state
                    continue
                if "doc" in outcome:
                    book.done(job, outcome["doc"])
            raise
