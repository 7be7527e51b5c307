"""Running a suite: one run after another into one folder, resumable, failures recorded.

``<out>/suite.json`` indexes the runs (id, labels, folder, status). A run whose ``metrics.json`` exists is
finished and skipped; one with a checkpoint written with the same config resumes from it; a run that raises
gets a ``failed.json`` (error line and traceback) and the suite goes on.
"""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reidkit.bench.suite import Job, Suite
from reidkit.config import ConfigError

log = logging.getLogger(__name__)

SUITE_INDEX = "suite.json"
FAILED_FILE = "failed.json"


# ------------------------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _live_lock(run_dir: Path) -> int | None:
    """The pid of a live process holding ``run_dir/.lock``, else None."""
    try:
        pid = int((run_dir / ".lock").read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def run_status(run_dir: Path) -> str:
    """``done`` (metrics.json), ``failed`` (failed.json), ``busy`` (a live run holds it) or ``pending``."""
    if (run_dir / "metrics.json").is_file():
        return "done"
    if _live_lock(run_dir) is not None:
        return "busy"
    if (run_dir / FAILED_FILE).is_file():
        return "failed"
    return "pending"


class SuiteIndex:
    """``<out>/suite.json``: the suite's name and file, and one entry per run (id, labels, dir, status)."""

    def __init__(self, out: Path, suite: Suite) -> None:
        from reidkit import __version__

        self.path = out / SUITE_INDEX
        old = json.loads(self.path.read_text()) if self.path.is_file() else None
        if old and old.get("suite") != suite.name:
            raise ConfigError(f"{out} holds runs of suite '{old.get('suite')}', not '{suite.name}'; "
                              "choose another --output so the report does not mix them")
        self.doc: dict[str, Any] = {
            "suite": suite.name, "suite_file": str(suite.path.resolve()), "description": suite.description,
            "reidkit": __version__, "created": (old or {}).get("created", _now()), "updated": _now(),
            "runs": [],
        }
        previous = {r["id"]: r for r in (old or {}).get("runs", [])}
        for job in suite.jobs:
            entry = {"id": job.id, "dataset": job.dataset, "method": job.method, "variant": job.variant,
                     "seed": job.seed, "trial": job.trial, "dir": job.id, "status": run_status(out / job.id)}
            for key in ("error", "wall_time_s", "started", "finished"):
                if key in previous.get(job.id, {}):
                    entry[key] = previous[job.id][key]
            self.doc["runs"].append(entry)
        self.entries = {r["id"]: r for r in self.doc["runs"]}

    def update(self, job_id: str, **fields: Any) -> None:
        self.entries[job_id].update(fields)
        if fields.get("status") == "done":
            self.entries[job_id].pop("error", None)
        self.write()

    def write(self) -> None:
        from reidkit.engine.checkpoint import write_json

        self.doc["updated"] = _now()
        write_json(self.path, self.doc)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def run_job(job: Job, run_dir: Path, *, device: str | None = None, callbacks: Sequence[Any] = ()
            ) -> dict[str, Any]:
    """Resolve the job's config and run it (resuming from a checkpoint written with the same config)."""
    from reidkit.engine.run import resolve_run_config, run

    cfg = resolve_run_config(job.method, config_file=job.config_file, overrides=job.all_overrides(run_dir))
    resume = False
    if (run_dir / "checkpoints" / "last.pt").is_file():
        resume = _same_config(run_dir / "config.yaml", cfg)
        if not resume:
            log.warning("%s: the checkpoint there was written with another config; starting afresh", run_dir)
    return run(cfg, device=device, resume=resume, callbacks=callbacks)


def _same_config(saved: Path, cfg: Any) -> bool:
    """Whether ``saved`` (a run's config.yaml) holds ``cfg``, wherever the folder is now (output and the
    speed-only keys ignored)."""
    import yaml

    from reidkit.config import SPEED_ONLY_KEYS, drop_keys, to_dict

    try:
        old = yaml.safe_load(saved.read_text())
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(old, dict):
        return False
    ignored = [("output",), *SPEED_ONLY_KEYS]
    return drop_keys(old, ignored) == drop_keys(to_dict(cfg), ignored)


RunFn = Callable[..., dict]


def check_suite(suite: Suite) -> list[tuple[Job, str | None]]:
    """Resolve every job's config without running it: ``(job, None)`` or ``(job, error line)``."""
    from reidkit.engine.run import resolve_run_config

    checked = []
    for job in suite.jobs:
        try:
            resolve_run_config(job.method, config_file=job.config_file,
                               overrides=job.all_overrides(Path("<out>") / job.id))
            checked.append((job, None))
        except Exception as e:  # report every problem, not just the first
            checked.append((job, _first_line(e)))
    return checked


def run_suite(suite: Suite, out: str | Path, *, device: str | None = None, console=None,
              run_fn: RunFn = run_job, only: Sequence[str] = (), jobs: int = 1) -> list[dict[str, Any]]:
    """Run every job of ``suite`` not finished in ``out``; returns the index entries of the selected jobs.

    ``only``: substrings of run ids to restrict the suite to. ``console``: a rich Console for the
    overall progress bar (none shown without it). ``run_fn(job, run_dir, device=, callbacks=)`` runs one
    job (tests replace it). A failing run gets ``failed.json`` and the suite continues; a run stopped by
    Ctrl-C stops the suite (run it again to continue). ``jobs`` > 1 runs that many at once, each in a process
    of its own (:mod:`reidkit.bench.parallel`; ``run_fn`` must then be picklable).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = SuiteIndex(out, suite)
    index.write()
    selected = [j for j in suite.jobs if not only or any(s in j.id for s in only)]
    if only and not selected:
        raise ConfigError(f"--only {' '.join(only)}: no run of suite '{suite.name}' matches")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    book = Bookkeeper(out, index, _SuiteProgress(console, total=len(selected), parallel=jobs > 1))
    try:
        if jobs > 1:
            from reidkit.bench.parallel import run_parallel

            run_parallel(selected, book, run_fn=run_fn, device=device, jobs=jobs)
        else:
            for job in selected:
                if not book.begin(job):
                    continue
                t0 = time.perf_counter()
                try:
                    doc = run_fn(job, out / job.id, device=device, callbacks=book.progress.callbacks())
                except Exception as e:  # a failed run must not stop the suite
                    book.failed(job, _first_line(e), traceback.format_exc(), time.perf_counter() - t0)
                    continue
                if not book.done(job, doc):
                    break
    except BaseException:
        book.interrupted()
        raise
    finally:
        book.progress.stop()
    return [index.entries[j.id] for j in selected]


class Bookkeeper:
    """What a suite records around each run, whether runs go one at a time or several at once: the index
    entry's status and times, ``failed.json``, and the progress display."""

    def __init__(self, out: Path, index: SuiteIndex, progress: _SuiteProgress) -> None:
        self.out, self.index, self.progress = out, index, progress

    def begin(self, job: Job) -> bool:
        """Whether ``job`` is to run now (not finished, not held by another process); marks it running."""
        run_dir = self.out / job.id
        status = run_status(run_dir)
        if status in ("done", "busy"):
            log.info("%s: %s", job.id, "finished earlier, skipped" if status == "done" else
                     f"another process (pid {_live_lock(run_dir)}) is running it, skipped")
            self.index.update(job.id, status=status)
            self.progress.advance(job.id, status)
            return False
        (run_dir / FAILED_FILE).unlink(missing_ok=True)
        self.progress.start_run(job.id)
        self.index.update(job.id, status="running", started=_now())
        return True

    def failed(self, job: Job, error: str, trace: str, elapsed_s: float) -> None:
        from reidkit.engine.checkpoint import write_json

        log.warning("%s failed: %s", job.id, error)
        run_dir = self.out / job.id
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / FAILED_FILE, {
            "id": job.id, "method": job.method, "dataset": job.dataset, "variant": job.variant,
            "seed": job.seed, "trial": job.trial, "error": error, "traceback": trace,
            "elapsed_s": elapsed_s, "time": _now()})
        self.index.update(job.id, status="failed", error=error, finished=_now())
        self.progress.advance(job.id, "failed")

    def done(self, job: Job, doc: dict[str, Any]) -> bool:
        """Record a returned run; False when it was stopped by request (the suite should stop too)."""
        if doc.get("stopped_early"):
            self.index.update(job.id, status="pending")
            log.warning("%s stopped by request; run the suite again to continue it", job.id)
            return False
        self.index.update(job.id, status="done", wall_time_s=doc.get("wall_time_s"), finished=_now())
        self.progress.advance(job.id, "done")
        return True

    def interrupted(self) -> None:
        """After an exception or Ctrl-C: runs still marked running get their status from their folders."""
        for entry in self.index.doc["runs"]:
            if entry["status"] == "running":
                entry["status"] = run_status(self.out / entry["dir"])
        self.index.write()


class _SuiteProgress:
    """An overall bar (runs) and a bar for the current run's epochs on a rich Console."""

    def __init__(self, console, total: int, *, parallel: bool = False) -> None:
        self.progress = None
        self.parallel = parallel  # runs at once: no per-run bars, one line per run started and ended
        if console is None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console)
        self.progress.start()
        self.suite = self.progress.add_task("suite", total=total, info="")
        self.current = None

    def start_run(self, job_id: str) -> None:
        if self.progress is None:
            return
        if self.parallel:
            self.progress.console.print(f"{'started':>7}  {job_id}")
            return
        if self.current is not None:
            self.progress.remove_task(self.current)
        self.current = self.progress.add_task(job_id, total=None, info="starting")
        self.progress.update(self.suite, info=job_id)

    def callbacks(self) -> list[Any]:
        return [] if self.progress is None or self.parallel else [_EpochBar(self.progress, self.current)]

    def advance(self, job_id: str, status: str) -> None:
        if self.progress is None:
            return
        self.progress.advance(self.suite)
        self.progress.console.print(f"{status:>7}  {job_id}")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


class _EpochBar:
    """Engine callback (duck-typed, so importing this module does not import the engine): the current
    run's epochs and steps on the suite's progress display."""

    def __init__(self, progress, task) -> None:
        self.progress, self.task = progress, task

    def on_fit_start(self, trainer) -> None:
        self.progress.update(self.task, total=trainer.cfg.optim.epochs, completed=trainer.start_epoch,
                             info="")

    def on_step_end(self, trainer, step: int, losses) -> None:
        self.progress.update(self.task, info=f"epoch {trainer.epoch} step {step + 1}")

    def on_epoch_end(self, trainer, epoch: int, record) -> None:
        self.progress.update(self.task, completed=epoch + 1, info=f"clusters {record.get('clusters', '?')}")

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self.progress.update(self.task, info=f"epoch {epoch}: preparing")

    def on_fit_end(self, trainer, results) -> None:
        self.progress.update(self.task, info="evaluated")
