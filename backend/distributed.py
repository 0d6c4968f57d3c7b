"""Data-parallel training over `devices` processes with torch.distributed (DistributedDataParallel),
the one mechanism the fool, train and defend jobs share.

A kind's runner calls `launch(entry, config, registry, ...)`: it starts `config["devices"]` processes with
`torch.multiprocessing` (spawn), one per GPU with NCCL, or CPU processes with gloo when the config pins
`device: "cpu"`, and each runs `entry(rank, config, port, state_dir, models_root, events)`. Inside, the
entry opens `rank_process(rank, world, device, port, events)` (its device and the process group), builds
the same run as one process would (same seed, same weights), wraps the model with `data_parallel`, and
takes its contiguous shard of every global batch (`backend.data.loader.shard`), so DDP's averaged
gradients are those of the whole batch. Rank 0 reports progress (`Progress` objects) through the
`events` queue, writes the resumable state and saves the card; it ends with `("done", {"card": id,
"hooks_left": n})`. If any process dies, the others are stopped and the run fails with
`DistributedRunFailed` naming the process and the step a retry resumes from.

BatchNorm: where a kind trains it in train mode (training from scratch), `sync_batchnorm` makes the
statistics those of the global batch (torch's SyncBatchNorm on CUDA; on the CPU, where torch's is
CUDA-only, `GlooSyncBatchNorm` all-reduces the same sums through gloo), so N processes train what one
does. Kinds that keep BatchNorm in eval mode (fool and defend by default) need nothing.
"""

from __future__ import annotations

import ctypes
import dataclasses
import inspect
import os
import queue
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from backend.errors import DistributedRunFailed, FoolingLabError, InvalidConfig
from backend.progress import ProgressFn

POLL_S = 0.2
Entry = Callable[[int, dict[str, Any], int, str | None, str, Any], None]


class ExplainableDDP(DistributedDataParallel):
    """DDP whose model attributes (architecture, default target layer) and layer names read through to
    the wrapped module, so `explain()` finds layers and LRP bounds on the wrapper as on the model."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)

    def get_submodule(self, target: str) -> torch.nn.Module:
        try:
            return super().get_submodule(target)
        except AttributeError:
            return self.module.get_submodule(target)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The module's own state dict (no "module." prefix): a loss that snapshots the weights it
        trains (distillation's teacher) gets what one process would."""
        return self.module.state_dict(*args, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def on_cuda(device: str | None) -> bool:
    """Whether a config's device setting means GPUs (None = this machine's default device)."""
    if device is None:
        from backend.config import get_settings

        device = get_settings().device
    return torch.device(device).type == "cuda"


@contextmanager
def rank_process(rank: int, world: int, device: str | None, port: int, events: Any) -> Iterator[torch.device]:
    """Inside one spawned process: its device, the process group (NCCL on CUDA, gloo on the CPU) for
    the block, and any error reported to the launcher before the process exits."""
    _die_with_parent()
    cuda = on_cuda(device)
    here = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(here)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(
        "nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        yield here
    except BaseException as err:
        kind = "config" if isinstance(err, FoolingLabError) else "error"
        events.put((kind, f"{type(err).__name__}: {err}"))
        raise
    finally:
        dist.destroy_process_group()


# torch >= 2.14 names DDP's per-forward buffer broadcast `forward_sync_buffers` (the old name warns)
_SYNC_BUFFERS = (
    "forward_sync_buffers"
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else "broadcast_buffers"
)


def data_parallel(model: torch.nn.Module, device: torch.device, sync_buffers: bool) -> ExplainableDDP:
    """The model wrapped for DDP on this process's device; `sync_buffers`: rank 0's buffers (BatchNorm
    statistics) are broadcast before every forward (every process starts from the same ones anyway)."""
    ids = [device.index] if device.type == "cuda" else None
    return ExplainableDDP(model, device_ids=ids, **{_SYNC_BUFFERS: sync_buffers})


def mean_over_processes(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over all processes (a copy; every process gets the same value). `t` lives on the
    process's device: NCCL reduces GPU tensors only."""
    t = t.clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def hooks_left(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


class _SumOverProcesses(torch.autograd.Function):
    """all_reduce(sum) that autograd differentiates: the gradient of a global sum with respect to one
    process's part is the sum of every process's incoming gradient (what SyncBatchNorm does)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, for CPU processes (torch's
    SyncBatchNorm runs on GPUs only). Per channel it all-reduces the count, the sum and then the
    squared deviations (two passes, as exact as one process's), through autograd-aware collectives so
    the gradients are the global batch's too. Parameters and buffers keep BatchNorm's names: the
    state dict is a plain BatchNorm's. Eval mode is plain BatchNorm (running statistics)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.track_running_stats:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        dist.all_reduce(count)
        mean = _SumOverProcesses.apply(x.sum(dims)) / count
        var = _SumOverProcesses.apply((x - mean.view(shape)).pow(2).sum(dims)) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            unbiased = var.detach() * (count / (count - 1).clamp_min(1))
            self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """The model with every BatchNorm synchronised over the processes (global-batch statistics):
    torch's SyncBatchNorm on CUDA, `GlooSyncBatchNorm` on the CPU (in place; same state dict)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.__class__ = GlooSyncBatchNorm
    return model


def check_gpus(world: int, device: str | None) -> None:
    """Refuse a GPU run this machine cannot give `world` GPUs (the worker hands a job its GPUs)."""
    if on_cuda(device) and torch.cuda.device_count() < world:
        raise InvalidConfig(
            f"devices={world} needs {world} GPUs; this worker sees {torch.cuda.device_count()}."
        )


def _saved_step(state_file: Path | None) -> int | None:
    if state_file is None or not state_file.is_file():
        return None
    return int(torch.load(state_file, map_location="cpu", weights_only=True)["step"])


def launch(
    entry: Entry,
    config: dict[str, Any],
    registry: Any,
    progress: ProgressFn | None = None,
    state_dir: str | Path | None = None,
    state_file: str | None = None,
) -> Any:
    """Run `entry(rank, config, port, state_dir, models_root, events)` in `config["devices"]` processes
    (on `config["device"]`) and return the Card rank 0 saved in `registry`. Progress reports gain
    `extra["devices"]` and `extra["rank_pids"]`. Raises `DistributedRunFailed` when a process dies
    (the message names where a retry resumes: the step saved in `state_dir / state_file`, if the kind
    keeps one)."""
    world, device = int(config["devices"]), config.get("device")
    check_gpus(world, device)
    folder = Path(state_dir) if state_dir else None
    saved = folder / state_file if folder is not None and state_file else None
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    procs = mp.start_processes(
        entry,
        args=(config, _free_port(), str(folder) if folder else None, str(registry.root), events),
        nprocs=world,
        join=False,
        start_method="spawn",
    )
    pids = [p.pid for p in procs.processes]
    result: dict[str, Any] | None = None
    failure: str | None = None
    try:
        finished = False
        while not finished or result is None:
            try:
                kind, payload = events.get(timeout=POLL_S)
            except queue.Empty:
                kind = None
            if kind == "progress" and progress is not None:
                extra = {**payload.extra, "rank_pids": pids, "devices": world}
                progress(dataclasses.replace(payload, extra=extra))
            elif kind == "done":
                result = payload
            elif kind in ("config", "error"):
                failure = failure or payload
            if not finished:
                try:
                    finished = procs.join(timeout=0)
                except mp.ProcessExitedException as err:
                    raise _failed(err.error_index, world, err, saved, failure) from None
                except mp.ProcessRaisedException as err:
                    raise _failed(err.error_index, world, err, saved, failure) from None
            elif result is None and events.empty():
                raise DistributedRunFailed("The data-parallel run ended without a result.")
    finally:
        for p in procs.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    if result.get("hooks_left"):
        raise RuntimeError(f"{result['hooks_left']} module hooks were left on the model")
    return registry.card(result["card"])


def reporter(events: Any, lead: bool) -> ProgressFn | None:
    """A rank's ProgressFn: rank 0's reports travel to the launcher; the others report nothing."""
    return (lambda p: events.put(("progress", p))) if lead else None


def done(events: Any, card_id: str, model: nn.Module) -> None:
    """Rank 0's last word: the saved card and how many hooks were left on the model."""
    events.put(("done", {"card": card_id, "hooks_left": hooks_left(model)}))


def _failed(index: int, world: int, err: Exception, saved: Path | None, failure: str | None):
    """The message a person sees when a process dies: which one, how, and where a retry resumes."""
    if failure and failure.split(":", 1)[0] in ("InvalidConfig", "InvalidDataset"):
        return InvalidConfig(failure.split(": ", 1)[1])
    how = failure or str(err).strip().splitlines()[0]
    if isinstance(err, mp.ProcessExitedException) and err.signal_name:
        how = f"it was killed by {err.signal_name}"
    step = _saved_step(saved)
    resume = (
        f"retry the job: it resumes from the state saved at step {step}"
        if step is not None
        else "retry the job: no state was saved yet, so it starts over"
    )
    return DistributedRunFailed(f"Data-parallel process {index} of {world} failed ({how}); {resume}.")
