"""Which queue consumers are alive: each `python -m backend worker` announces itself in the job store
every few seconds (device, GPUs and how many are free, jobs running), so the app (on any machine) can
say whether a queued job will be picked up, and if not, why."""

from __future__ import annotations

from dataclasses import dataclass

from backend.jobs.records import now
from backend.jobs.stores import open_store

BEAT_EVERY_S = 2.0
ALIVE_WITHIN_S = 10.0


@dataclass(frozen=True)
class WorkerInfo:
    id: str  # hostname:pid
    host: str
    pid: int
    threads: int  # jobs it runs at once
    device: str
    started_at: float
    beat_at: float
    gpus: int = 0  # GPUs it hands out to jobs (settings.gpus)
    free_gpus: int = 0  # of those, not held by a running job
    running: int = 0  # jobs it runs now


def alive_workers(within_s: float = ALIVE_WITHIN_S) -> list[WorkerInfo]:
    """Consumers that announced themselves in the last `within_s` seconds (QueueUnavailable if the
    store cannot be reached)."""
    cutoff = now() - within_s
    fields = WorkerInfo.__dataclass_fields__
    return [
        WorkerInfo(**{k: v for k, v in w.items() if k in fields})
        for w in open_store().worker_beats()
        if w.get("beat_at", 0) >= cutoff
    ]
