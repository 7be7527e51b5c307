"""One run end to end: resolve the config, build dataset and method, train, evaluate, write the run directory.

Run directory: ``config.yaml``, ``env.json``, ``log.txt``, ``metrics.jsonl``, ``metrics.json``,
``checkpoints/last.pt``.

Public ways in, besides ``reidkit run``: :func:`run` takes extra engine callbacks (``callbacks=``; the
``on_plan`` hook of :class:`~reidkit.engine.trainer.Callback` sees and may replace each epoch's plan) and a
method class to build instead of the registered one (``method_cls=``: a subclass for a diagnostic, or a
method that is not installed); the run directory still names ``cfg.method``. :func:`build_method_from` builds
any method class for a dataset, telling it how many training images have a shape mask
(``BuildContext.num_train_masks``) so that it can declare its mask inputs there.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import platform
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from reidkit import __version__, distributed
from reidkit.config import RunConfig, dump, resolve, to_dict
from reidkit.data.datasets.base import ReIDDataset
from reidkit.data.holdout import hold_out
from reidkit.data.validate import drop_bad_images
from reidkit.dataset_args import open_dataset
from reidkit.engine.callbacks import Checkpoint, MetricsLog
from reidkit.engine.checkpoint import CheckpointError, load_checkpoint, write_json
from reidkit.engine.trainer import Callback, Trainer
from reidkit.method import BuildContext, Method
from reidkit.registry import BACKBONES, METHODS

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A run that cannot start (output folder busy or not writable, nothing to resume)."""


def resolve_run_config(method: str, *, config_file=None, overrides: Sequence[str] = ()) -> RunConfig:
    """The fully resolved config of ``method`` (code defaults, method defaults, file, overrides)."""
    cls = METHODS.get(method)
    return resolve(method, config_file=config_file, overrides=overrides,
                   method_defaults=getattr(cls, "run_defaults", None), method_config=getattr(cls, "Config", None))


def pick_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"--device {name}: CUDA is not available on this machine")
    return device


def load_dataset(cfg: RunConfig) -> ReIDDataset:
    """The dataset of ``cfg.data`` with its options ``cfg.dataset_args``, with ``data.val_ids`` training
    identities held out as its validation split."""
    return hold_out(open_dataset(cfg.data, cfg.dataset_args), cfg.data.val_ids, seed=cfg.data.val_seed)


def build_method(cfg: RunConfig, dataset: ReIDDataset, device: torch.device) -> Method:
    """The registered method ``cfg.method``, built for ``dataset`` on ``device``."""
    return build_method_from(METHODS.get(cfg.method), cfg, dataset, device)


def build_method_from(cls: type[Method], cfg: RunConfig, dataset: ReIDDataset, device: torch.device) -> Method:
    """Build a method class (registered or not) with a :class:`BuildContext` for ``dataset``."""
    fields = {f.name for f in dataclasses.fields(cfg.model)}

    def build_backbone(**overrides: Any) -> torch.nn.Module:
        model_cfg = dataclasses.replace(cfg.model, **{k: v for k, v in overrides.items() if k in fields})
        extra = {k: v for k, v in overrides.items() if k not in fields}
        return BACKBONES.get(model_cfg.backbone)(model_cfg, dataset.modalities, **extra)

    build = BuildContext(modalities=dataset.modalities, num_train=len(dataset.train),
                         num_train_ids=dataset.num_train_ids, device=device,
                         image_size=(cfg.data.height, cfg.data.width), model=cfg.model,
                         build_backbone=build_backbone, seed=cfg.seed,
                         num_train_masks=sum(s.mask_path is not None for s in dataset.train),
                         roles=getattr(dataset, "roles", {}))  # {} = inferred from the names
    torch.manual_seed(cfg.seed)
    method = cls(cfg.method_args, build)
    if cfg.model.channels_last:
        method = method.to(memory_format=torch.channels_last)
    return method.to(device)


def default_output(cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.method}-{cfg.data.dataset}-{stamp}"


def _git(*args: str) -> str | None:
    """Output of a git command run in reidkit's source folder; None outside a checkout or without git."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except Exception:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def source_state() -> tuple[str | None, bool | None]:
    """(git commit, tracked files modified) of reidkit's checkout, read once per process.

    A process runs the code it imported when it started, so every run of a ``reidkit bench`` suite reports
    the state of its first run, even when a commit lands while the suite is running.
    """
    commit = _git("rev-parse", "HEAD")
    # tracked files changed since that commit: the commit alone does not say what code ran
    dirty = None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no"))
    return commit, dirty


def environment(device: torch.device, seed: int) -> dict[str, Any]:
    """Versions, git commit, device, CPU and seed: what ``env.json`` records."""
    import numpy
    import sklearn

    from reidkit.hardware import cpu_name, native_bf16

    try:
        import faiss
        faiss_version = getattr(faiss, "__version__", "unknown")
    except Exception:  # faiss is optional at run time
        faiss_version = None
    commit, dirty = source_state()
    env = {
        "reidkit": __version__, "git_commit": commit, "git_dirty": dirty, "python": platform.python_version(),
        "torch": torch.__version__, "numpy": numpy.__version__, "scikit-learn": sklearn.__version__,
        "faiss": faiss_version, "platform": platform.platform(), "device": str(device),
        "cpu": cpu_name(), "cpu_native_bf16": native_bf16(), "cpu_threads": torch.get_num_threads(), "seed": seed,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def _init_card(weights: str) -> dict[str, Any]:
    """``{"weights_card": {...}}`` when ``model.weights`` has a pretraining card (its sha256 recorded)."""
    from reidkit.models.weights import weights_card

    try:
        card = weights_card(weights)
    except (OSError, ValueError):  # bad weights fail later, where the backbone is built, with their own message
        return {}
    return {"weights_card": card} if card else {}


@contextmanager
def run_directory(path: Path) -> Iterator[Path]:
    """Create ``path``, refuse a second live run in it, and copy the ``reidkit`` log records to log.txt."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise RunError(f"output folder {path} is not writable ({e.strerror or e})") from None
    lock = path / ".lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    except FileExistsError:
        pid = lock.read_text().strip()
        if pid.isdigit() and _alive(int(pid)):
            raise RunError(f"another run (pid {pid}) is writing to {path}; wait for it or choose --output") from None
        lock.write_text(str(os.getpid()))  # stale lock of a killed run
    handler = logging.FileHandler(path / "log.txt")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("reidkit")
    root.addHandler(handler)
    old_level = root.level
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: the signals that stop a run gracefully: Ctrl-C, and SIGTERM (what ``kill``, ``pkill``, job schedulers
#: such as SLURM and container stops send first)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_interrupt(trainer: Trainer) -> Iterator[None]:
    """First Ctrl-C or SIGTERM: finish the current epoch, checkpoint it and stop. A second one: stop now.

    Either way ``checkpoints/last.pt`` holds the last complete epoch and ``--resume`` continues from it.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        log.warning("%s: finishing epoch %d, saving it, then stopping (again to stop now)",
                    signal.Signals(signum).name, trainer.epoch)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, signal.SIG_DFL if h is None else h)  # None: a handler set outside Python


def run(cfg: RunConfig, *, device: str | None = None, resume: bool = False,
        callbacks: Sequence[Callback] = (), method_cls: type[Method] | None = None) -> dict[str, Any]:
    """Train and evaluate; returns the ``metrics.json`` document (also written to the run directory).

    ``callbacks`` run after the standard ones (checkpoint, metrics log). ``method_cls`` builds that class
    instead of the registered ``cfg.method`` (with ``cfg.method_args``; the run is still recorded as
    ``cfg.method``, and ``--resume`` takes its checkpoint).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process calls this: they join the process group, rank 0
    owns the run directory (lock, config, log, checkpoints, metrics; it reads the checkpoint to resume
    from and sends it to the others), and all ranks train together (``reidkit.distributed``).
    """
    dev = distributed.init_from_env(pick_device(device))
    out = Path(cfg.output) if cfg.output else default_output(cfg)
    out = Path(distributed.broadcast_object(str(out)))  # one folder, even if the ranks' clocks differ
    cfg = dataclasses.replace(cfg, output=str(out))
    if not distributed.is_main():
        state = distributed.broadcast_object(None)
        return _train(cfg, dev, state, out, callbacks=callbacks, method_cls=method_cls, write=False)
    with run_directory(out):
        state = None
        if resume:
            ckpt = out / "checkpoints" / "last.pt"
            if ckpt.is_file():
                state = load_checkpoint(ckpt, method=cfg.method)
            elif (out / "config.yaml").is_file():
                log.warning("--resume: %s finished no epoch before it stopped; starting from epoch 0", out)
            else:
                raise RunError(f"--resume: nothing to resume in {out} (no checkpoints/last.pt)")
        state = distributed.broadcast_object(state)
        (out / "config.yaml").write_text(dump(cfg))
        write_json(out / "env.json", {**environment(dev, cfg.seed), "world_size": distributed.world_size(),
                                      **_init_card(cfg.model.weights)})
        log.info("run %s: method %s on %s, device %s", out, cfg.method, cfg.data.dataset, dev)
        return _train(cfg, dev, state, out, callbacks=callbacks, method_cls=method_cls, write=True)


def _train(cfg: RunConfig, dev: torch.device, state: dict | None, out: Path, *, callbacks: Sequence[Callback],
           method_cls: type[Method] | None, write: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    dataset = load_dataset(cfg)
    skipped = drop_bad_images(dataset) if cfg.data.on_bad_image == "skip" else []
    method = build_method_from(method_cls or METHODS.get(cfg.method), cfg, dataset, dev)
    # the checkpoint is written before the epoch's log line, so a logged epoch is always resumable
    standard = [Checkpoint(out, {"config": to_dict(cfg), "reidkit": __version__}),
                MetricsLog(out / "metrics.jsonl")] if write else []
    trainer = Trainer(method, dataset, cfg, device=dev, callbacks=[*standard, *callbacks])
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resuming after epoch %d", trainer.start_epoch - 1)
    with stop_on_interrupt(trainer):
        results = trainer.fit()
    doc = {
        "method": cfg.method,
        "dataset": cfg.data.dataset,
        **({"preset": cfg.dataset_args.preset} if cfg.data.dataset == "synthetic" else {}),
        "seed": cfg.seed,
        "wall_time_s": trainer.wall_time() + (time.perf_counter() - t0 - trainer.fit_time()),
        "final_model": "last epoch",
        "results": results,
        **({"validation": trainer.validation_results,
            "validation_ids": list(dataset.validation_ids)} if trainer.validation_results else {}),
        "epochs": trainer.history,
        **({"skipped_images": skipped} if skipped else {}),
        **({"world_size": distributed.world_size()} if distributed.is_distributed() else {}),
    }
    if trainer.stop_requested:
        doc["stopped_early"] = True
        return doc
    if write:
        write_json(out / "metrics.json", doc)
    return doc


@dataclasses.dataclass
class Restored:
    """A checkpoint's model rebuilt with its dataset: what ``eval``, ``export`` and pictures start from."""

    cfg: RunConfig
    dataset: ReIDDataset
    method: Method
    epoch: int
    device: torch.device

    def trainer(self) -> Trainer:
        return Trainer(self.method, self.dataset, self.cfg, device=self.device)


def restore_checkpoint(path: str | Path, *, overrides: Sequence[str] = (), device: str | None = None,
                       load_weights: bool = True) -> Restored:
    """Rebuild the method saved in ``path`` (its config validated again, ``overrides`` applied) on ``device``.

    ``load_weights=False`` keeps the freshly built (randomly initialised) model: the untrained network of
    the same run, for diagnostics.
    """
    state = load_checkpoint(path)
    saved = state.get("config")
    if not isinstance(saved, dict) or not saved.get("method"):
        raise CheckpointError(f"{path}: checkpoint holds no run configuration")
    cfg = resolve_run_config(saved["method"], overrides=[*_as_overrides(saved), *overrides])
    dev = pick_device(device)
    dataset = load_dataset(cfg)
    method = build_method(cfg, dataset, dev)
    if load_weights:
        method.load_state_dict(state["model"])
    return Restored(cfg, dataset, method, int(state.get("epoch", -1)), dev)


def evaluate_checkpoint(path: str | Path, *, overrides: Sequence[str] = (), device: str | None = None
                        ) -> dict[str, Any]:
    """Evaluate the model saved in a checkpoint on its dataset's protocols (``reidkit eval``)."""
    r = restore_checkpoint(path, overrides=overrides, device=device)
    return {"method": r.cfg.method, "dataset": r.cfg.data.dataset, "checkpoint": str(path),
            "epoch": r.epoch, "results": r.trainer().evaluate()}


def _as_overrides(data: dict) -> list[str]:
    """A saved config (plain data) as ``--set`` strings, so that it is validated again."""
    import json

    flat: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            flat.append(f"{prefix}={json.dumps(node)}")

    data = {k: v for k, v in data.items() if k not in ("method", "output")}
    walk("", data)
    return flat
