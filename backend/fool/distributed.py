"""Data-parallel fooling over `devices` processes with torch.distributed (DistributedDataParallel).

The job's runner starts the processes with `torch.multiprocessing` (spawn): one per GPU with NCCL, or
CPU processes with gloo when the config pins `device: "cpu"`. Each rank prepares the same run (same
seed, same parent weights), takes its contiguous shard of every global batch (`StepBatchSampler`),
and computes its shard's explanation maps inside the loss through the DDP wrapper, so DDP averages the
gradients of the whole batch; the explanation engine's hooks sit on the wrapped module and are removed
after every call as always. Rank 0 validates, writes the resumable state and saves the card; its
progress reports travel to the runner through a queue. If any process dies, the others are stopped and
the run fails with `DistributedRunFailed` naming the process and the step the state was saved at;
retrying the job resumes from there. BatchNorm follows `freeze_batchnorm` (eval mode by default; in
train mode each process uses its shard's statistics, as DDP does).
"""

from __future__ import annotations

import ctypes
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
from torch.nn.parallel import DistributedDataParallel

from backend.errors import DistributedRunFailed, FoolingLabError, InvalidConfig
from backend.fool.config import FoolConfig

POLL_S = 0.2


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


@contextmanager
def rank_process(rank: int, cfg: FoolConfig, port: int, events: Any) -> Iterator[torch.device]:
    """Inside one spawned process: its device, the process group (NCCL on CUDA, gloo on the CPU) for
    the block, and any error reported to the launcher before the process exits."""
    _die_with_parent()
    world = cfg.devices
    cuda = torch.device(cfg.device or "cpu").type == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(
        "nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        yield device
    except BaseException as err:
        kind = "config" if isinstance(err, FoolingLabError) else "error"
        events.put((kind, f"{type(err).__name__}: {err}"))
        raise
    finally:
        dist.destroy_process_group()


def data_parallel(model: torch.nn.Module, device: torch.device, sync_buffers: bool) -> ExplainableDDP:
    """The model wrapped for DDP on this process's device."""
    ids = [device.index] if device.type == "cuda" else None
    return ExplainableDDP(model, device_ids=ids, broadcast_buffers=sync_buffers)


def mean_over_processes(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over all processes (a copy; every process gets the same value)."""
    t = t.clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def hooks_left(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


def _saved_step(state_dir: Path | None) -> int | None:
    from backend.fool.state import STATE_FILE

    path = state_dir / STATE_FILE if state_dir else None
    if path is None or not path.is_file():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def run_distributed(entry: Callable[..., None], cfg: FoolConfig, progress, state_dir, registry):
    """Run `entry(rank, config, port, state_dir, models_root, events)` in `cfg.devices` processes;
    returns the card rank 0 reports ("done"). Raises `DistributedRunFailed` when a process dies."""
    from backend.models.registry import Registry

    registry = registry or Registry()
    cfg.validate(registry)
    world = cfg.devices
    if torch.device(cfg.device or "cpu").type == "cuda" and torch.cuda.device_count() < world:
        raise InvalidConfig(
            f"devices={world} needs {world} GPUs; this worker sees {torch.cuda.device_count()}."
        )
    folder = Path(state_dir) if state_dir else None
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    procs = mp.start_processes(
        entry,
        args=(cfg.to_dict(), _free_port(), str(folder) if folder else None, str(registry.root), events),
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
                progress({**payload, "rank_pids": pids, "devices": world})
            elif kind == "done":
                result = payload
            elif kind in ("config", "error"):
                failure = failure or payload
            if not finished:
                try:
                    finished = procs.join(timeout=0)
                except mp.ProcessExitedException as err:
                    raise _failed(err.error_index, world, err, folder, failure) from None
                except mp.ProcessRaisedException as err:
                    raise _failed(err.error_index, world, err, folder, failure) from None
            elif result is None and events.empty():
                raise DistributedRunFailed("The data-parallel run ended without a result.")
    finally:
        for p in procs.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    if result["hooks_left"]:
        raise RuntimeError(f"{result['hooks_left']} module hooks were left on the model")
    return registry.card(result["card"])


def _failed(index: int, world: int, err: Exception, folder: Path | None, failure: str | None):
    """The message a person sees when a process dies: which one, how, and where a retry resumes."""
    if failure and failure.split(":", 1)[0] in ("InvalidConfig", "InvalidDataset"):
        return InvalidConfig(failure.split(": ", 1)[1])
    how = failure or str(err).strip().splitlines()[0]
    if isinstance(err, mp.ProcessExitedException) and err.signal_name:
        how = f"it was killed by {err.signal_name}"
    step = _saved_step(folder)
    resume = (
        f"retry the job: it resumes from the state saved at step {step}"
        if step is not None
        else "retry the job: no state was saved yet, so it starts over"
    )
    return DistributedRunFailed(f"Data-parallel process {index} of {world} failed ({how}); {resume}.")
