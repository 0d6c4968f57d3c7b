"""The sidebar's health line: can the queue be reached, is a worker consuming it, which device."""

from __future__ import annotations

from dataclasses import dataclass

from backend.config import get_settings
from backend.errors import QueueUnavailable


@dataclass(frozen=True)
class LabStatus:
    device: str  # where the app computes heatmaps
    queue_ok: bool
    workers_alive: int  # consumers that announced themselves within the last few seconds
    worker_devices: tuple[str, ...]
    running: int
    queued: int
    message: str = ""  # why the queue is unavailable
    gpus: int = 0  # GPUs the alive workers announce, all together
    free_gpus: int = 0


def lab_status() -> LabStatus:
    """Never raises for a queue that is down: that is a status to show, not an error."""
    from backend import jobs
    from backend.jobs.workers import alive_workers

    device = get_settings().device
    try:
        records = jobs.list_jobs(limit=500)
        workers = alive_workers()
    except QueueUnavailable as err:
        return LabStatus(device, False, 0, (), 0, 0, str(err))
    running = sum(r.state == "running" for r in records)
    queued = sum(r.state == "queued" for r in records)
    devices = tuple(sorted({w.device for w in workers}))
    gpus, free = sum(w.gpus for w in workers), sum(w.free_gpus for w in workers)
    return LabStatus(device, True, len(workers), devices, running, queued, gpus=gpus, free_gpus=free)
