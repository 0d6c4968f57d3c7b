"""GPUs per job: how many a job needs, which of a worker's GPUs are free, and why a job still waits.

A job asks for `devices` in its config (fool / train / defend read the same field for their
data-parallel run; `world_size` is accepted as its synonym). A worker announces how many GPUs it has
(`settings.gpus`) and how many are free; a job that needs N GPUs runs only on a worker with N free,
whose supervisor hands them over as the runner's `CUDA_VISIBLE_DEVICES`, so the job's `cuda` means
its own GPUs. A worker without GPUs runs single-device jobs on its CPU, as it always has.

No scheduler of our own: a worker that cannot take a job puts it back on the queue (with a short delay)
for the next worker to look at; PyTorch's distributed launcher spreads a job over the GPUs it got.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol


def devices_requested(config: Mapping[str, Any]) -> int:
    """The number of devices a job config asks for (`devices`, else `world_size`, else 1)."""
    value = config.get("devices", config.get("world_size", 1))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1  # the kind's own validation names a bad value; here it only must not block the queue
    return value


def gpus_needed(config: Mapping[str, Any]) -> int:
    """GPUs a job needs from the worker that runs it: `devices`, unless the config pins its device
    (`"cpu"` runs data-parallel on CPU processes; `"cuda:1"` names its GPU itself): then none."""
    device = config.get("device")
    if isinstance(device, str) and device.strip().lower() not in ("", "cuda"):
        return 0
    return devices_requested(config)


def fits(needed: int, gpus: int, free: int) -> bool:
    """Whether a worker with `gpus` GPUs (`free` of them free now) can take a job needing `needed`.
    A worker without GPUs takes single-device jobs (they run on its CPU)."""
    if gpus <= 0:
        return needed <= 1
    return needed <= free


class GpuPool:
    """The GPUs of this consumer process, shared by its worker threads."""

    def __init__(self, total: int = 0, visible: str | None = None):
        self._lock = threading.Lock()
        self.configure(total, visible)

    def configure(self, total: int, visible: str | None = None) -> None:
        """`total` GPUs; `visible` is the consumer's own CUDA_VISIBLE_DEVICES (its GPUs' real names)."""
        names = [v.strip() for v in (visible or "").split(",") if v.strip()]
        with self._lock:
            self.total = max(0, int(total))
            self._names = [names[i] if i < len(names) else str(i) for i in range(self.total)]
            self._free = list(range(self.total))

    @property
    def free(self) -> int:
        with self._lock:
            return len(self._free)

    def take(self, needed: int) -> list[int] | None:
        """GPU indices for a job needing `needed` (an empty list on a GPU-less worker), or None if it
        must wait for another worker (or for this one's GPUs to come free)."""
        with self._lock:
            if not fits(needed, self.total, len(self._free)):
                return None
            if self.total == 0:
                return []
            taken, self._free = self._free[: max(needed, 1)], self._free[max(needed, 1) :]
            return taken

    def give(self, taken: Sequence[int]) -> None:
        with self._lock:
            self._free = sorted(set(self._free) | set(taken))

    def visible_devices(self, taken: Sequence[int]) -> str:
        """CUDA_VISIBLE_DEVICES for a runner that got `taken`."""
        return ",".join(self._names[i] for i in taken)


POOL = GpuPool()  # the consumer configures it at start (backend.jobs.consumer)


class AnnouncedWorker(Protocol):
    gpus: int
    free_gpus: int
    threads: int
    running: int


def wait_reason(needed: int, workers: Sequence[AnnouncedWorker]) -> str:
    """Why a queued job needing `needed` GPUs has not started, for a person reading the Jobs page."""
    if not workers:
        return "waiting for a worker: none is alive (start one with ./lab worker)"
    able = [w for w in workers if fits(needed, w.gpus, w.gpus)]  # could ever take it
    now_free = [w for w in able if fits(needed, w.gpus, w.free_gpus) and w.running < w.threads]
    by_gpus: dict[tuple[int, int], int] = {}
    for w in workers:
        by_gpus[(w.gpus, w.free_gpus)] = by_gpus.get((w.gpus, w.free_gpus), 0) + 1
    summary = ", ".join(
        f"{n} with {g} GPU{'s' if g != 1 else ''}" + (f" ({f} free)" if g else "")
        for (g, f), n in sorted(by_gpus.items())
    )
    alive = f"workers alive: {summary}"
    if needed > 1:
        head = f"waiting for a worker with {needed} free GPUs"
        if not able:
            head += " (none alive has that many)"
    elif now_free:
        head = "waiting for a worker to pick it up"
    else:
        head = "waiting for a free worker (all are busy)"
    return f"{head}; {alive}"
