"""The sidebar's health line: can the queue be reached, is a worker consuming it, which device."""

from __future__ import annotations

from dataclasses import dataclass

from backend.config import get_settings
from backend.errors import QueueUnavailable


@dataclass(frozen=True)
class LabStatus:
    device: str
    queue_ok: bool
    workers_alive: int
    running: int
    queued: int
    message: str = ""


def lab_status() -> LabStatus:
    """Never raises for a queue that is down: that is a status to show, not an error."""
    from backend import jobs

    device = get_settings().device
    try:
        records = jobs.list_jobs(limit=500)
        workers = jobs.workers_alive()
    except QueueUnavailable as err:
        return LabStatus(device, False, 0, 0, 0, str(err))
    running = sum(r.state == "running" for r in records)
    queued = sum(r.state == "queued" for r in records)
    return LabStatus(device, True, workers, running, queued)
