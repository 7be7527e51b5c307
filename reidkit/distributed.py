"""Multi-process training with PyTorch's distributed runtime (``torchrun``), and single-process no-ops.

``torchrun --nproc_per_node N -m reidkit run ...`` starts N copies of the same command; each reads its
place from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and
:func:`init_from_env` joins the process group (NCCL on CUDA, gloo on CPU). From there:

- every rank extracts its share of the images and the features are gathered (:func:`gather_rows`), so
  every rank holds the same [N, D] matrix;
- the clustering primitives are decorated with :func:`on_rank0`: rank 0 computes, the others receive the
  result, so clustering runs once and every rank trains on the same pseudo-labels;
- P x K steps are drawn identically on every rank and split by identities (``reidkit.data.samplers``);
- the model is wrapped in DistributedDataParallel (gradients averaged), BatchNorm statistics are computed
  over the global batch (:func:`sync_batchnorm`), and momentum memories are updated with the gathered
  batch (``reidkit.models.memory``), so the ranks' state never drifts apart;
- only rank 0 writes the run directory.

Without a process group (plain ``reidkit run``) every function here is a cheap no-op.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import inspect
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_side_group = None  # a second gloo group for object broadcasts and gathers, apart from DDP's traffic
_inside_rank0 = False  # set while rank 0 runs an on_rank0 function (nested ones must not broadcast)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single-process run): the process that writes files and logs progress."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """This process's rank from torchrun's environment (usable before the process group exists)."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


def init_from_env(device: torch.device | None = None, timeout_s: float = 1800.0) -> torch.device | None:
    """Join the process group described by torchrun's environment variables (no-op without them).

    Returns the device this rank should use (``cuda:LOCAL_RANK`` when ``device`` is CUDA), or ``device``.
    """
    global _side_group
    if not launched_by_torchrun() or not dist.is_available():
        return device
    if dist.is_initialized():
        return _local_device(device)
    local = _local_device(device)
    backend = "nccl" if local is not None and local.type == "cuda" else "gloo"
    if local is not None and local.type == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    _side_group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))
    log.info("distributed: rank %d of %d (%s backend), device %s", rank(), world_size(), backend, local)
    return local


def _local_device(device: torch.device | None) -> torch.device | None:
    if device is not None and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shutdown() -> None:
    global _side_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _side_group = None


def _group():
    return _side_group if _side_group is not None else dist.group.WORLD


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; tensors arrive on the CPU)."""
    if not is_distributed():
        return obj
    holder = [_to_cpu(obj) if rank() == src else None]
    dist.broadcast_object_list(holder, src=src, group=_group())
    return holder[0]


def _map_tensors(obj: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """``obj`` with ``fn`` applied to every tensor inside it (dataclasses, named tuples, lists, dicts)."""
    if isinstance(obj, Tensor):
        return fn(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _map_tensors(getattr(obj, f.name), fn)
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # named tuples
        return type(obj)(*(_map_tensors(v, fn) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    return obj


def _to_cpu(obj: Any) -> Any:
    return _map_tensors(obj, lambda t: t.detach().cpu())


class _Failure:
    """What the other ranks learn of an exception on rank 0 (exceptions need not be picklable)."""

    def __init__(self, error: BaseException) -> None:
        self.type_name = type(error).__name__
        self.message = str(error)


class RankFailure(RuntimeError):
    """Raised on ranks > 0 when rank 0 failed in a function they were waiting for."""


def on_rank0(fn: F) -> F:
    """Decorator: in a distributed run, ``fn`` runs on rank 0 only and its result is sent to every rank.

    Tensors in the result come back on the device of the first tensor argument. An exception on rank 0
    is raised on every rank (so no rank waits forever). Calls nested inside a decorated call run plainly.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _inside_rank0
        if not is_distributed() or _inside_rank0:
            return fn(*args, **kwargs)
        result: Any = None
        error: Exception | None = None
        if rank() == 0:
            _inside_rank0 = True
            try:
                result = fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - told to the other ranks, then raised here
                error, result = e, _Failure(e)
            finally:
                _inside_rank0 = False
        result = broadcast_object(result)
        if error is not None:
            raise error
        if isinstance(result, _Failure):
            raise RankFailure(f"rank 0 failed in {fn.__qualname__}: {result.type_name}: {result.message}")
        return _to_device(result, _first_device(args, kwargs))

    return wrapper  # type: ignore[return-value]


def _first_device(args, kwargs) -> torch.device | None:
    for v in (*args, *kwargs.values()):
        if isinstance(v, Tensor):
            return v.device
    return None


def _to_device(obj: Any, device: torch.device | None) -> Any:
    if device is None or device.type == "cpu":
        return obj
    return _map_tensors(obj, lambda t: t.to(device))


def shard(n: int) -> slice:
    """This rank's contiguous share of ``range(n)`` (all of it in a single-process run)."""
    size, r = world_size(), rank()
    base, extra = divmod(n, size)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


def gather_rows(x: Tensor) -> Tensor:
    """The ranks' ``x`` [n_r, ...] concatenated in rank order (n_r may differ between ranks)."""
    if not is_distributed():
        return x
    group = _group()
    cpu = x.detach().cpu().contiguous()
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([cpu.shape[0]], dtype=torch.int64), group=group)
    longest = max(int(s) for s in sizes)
    padded = torch.zeros((longest, *cpu.shape[1:]), dtype=cpu.dtype)
    padded[:cpu.shape[0]] = cpu
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded, group=group)
    return torch.cat([p[:int(s)] for p, s in zip(parts, sizes)]).to(x.device)


def all_mean(values: Tensor) -> Tensor:
    """The element-wise mean of ``values`` over ranks (a copy; ``values`` itself in a single process)."""
    if not is_distributed():
        return values
    out = values.detach().to(torch.float64).cpu().clone()
    dist.all_reduce(out, group=_group())
    return (out / world_size()).to(values.device)


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one rank."""
    if not is_distributed():
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_group())
    return bool(t.item())


# -- BatchNorm over the global batch ---------------------------------------------------------------------
class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is the sum of the ranks' gradients (each rank's input feeds every
    rank's output)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class _GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover every rank's batch (sums all-reduced with autograd).

    Used on CPU (gloo), where ``torch.nn.SyncBatchNorm`` is not supported; parameters and buffers are the
    same as the BatchNorm it replaces, so checkpoints do not change.
    """

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(input)
        dims = [0] + list(range(2, input.dim()))
        count = torch.tensor(float(input.numel() // input.shape[1]), dtype=input.dtype)
        stats = torch.cat([input.sum(dims), (input * input).sum(dims), count.view(1)])
        stats = _AllReduceSum.apply(stats)
        c = input.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp(min=0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * n.detach() / (n.detach() - 1).clamp(min=1)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        shape = [1, c] + [1] * (input.dim() - 2)
        out = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers of ``module`` normalised over the global batch (in place where possible).

    CUDA: ``torch.nn.SyncBatchNorm``. CPU: the same BatchNorm objects switched to a gloo-friendly
    all-reduce implementation (their state dict unchanged).
    """
    if not is_distributed():
        return module
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for m in module.modules():
        if type(m) in _GLOBAL_BN:
            m.__class__ = _GLOBAL_BN[type(m)]
    return module


class GlobalBatchNorm1d(_GlobalBatchNorm, nn.BatchNorm1d):
    pass


class GlobalBatchNorm2d(_GlobalBatchNorm, nn.BatchNorm2d):
    pass


_GLOBAL_BN = {nn.BatchNorm1d: GlobalBatchNorm1d, nn.BatchNorm2d: GlobalBatchNorm2d}


class StepModule(nn.Module):
    """Wraps a method so that DistributedDataParallel sees ``training_step`` as the forward."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch):
        return self.method.training_step(batch)


def wrap_ddp(method: nn.Module, device: torch.device) -> nn.Module | None:
    """A DistributedDataParallel wrapper whose forward is ``method.training_step`` (None in one process).

    Parameters that a step does not use (switched-off branches) are allowed.
    """
    if not is_distributed():
        return None
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # memories and other per-epoch buffers are kept equal by the methods' own gathered updates: DDP must
    # not overwrite them from rank 0 at every forward (the keyword was renamed in recent torch versions)
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return DistributedDataParallel(StepModule(method), device_ids=ids, find_unused_parameters=True, **no_sync)
