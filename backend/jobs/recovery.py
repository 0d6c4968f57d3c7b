"""What happens to a job whose run was lost (runner or consumer killed), and the sweep that finds them.

`settings.on_crash` decides: "fail" marks the job failed with the reason; "requeue" puts it back on
the queue (up to `MAX_ATTEMPTS`), where it resumes from its state dir. Every change is a
compare-and-set on (state, attempt), so two consumers sweeping at once recover a job only once.
"""

from __future__ import annotations

import os
import socket

from backend.config import get_settings
from backend.jobs.records import QUEUED, RUNNING, now, stamped
from backend.jobs.store import JobStore

MAX_ATTEMPTS = 3
HEARTBEAT_TIMEOUT_ENV = "FOOLING_LAB_HEARTBEAT_TIMEOUT"
DEFAULT_HEARTBEAT_TIMEOUT_S = 15.0


def heartbeat_timeout_s() -> float:
    """Seconds without a heartbeat after which a running job counts as orphaned."""
    return float(os.environ.get(HEARTBEAT_TIMEOUT_ENV, DEFAULT_HEARTBEAT_TIMEOUT_S))


def handle_lost_run(store: JobStore, job_id: str, attempt: int, reason: str) -> str | None:
    """Apply the crash policy to `attempt` of a job still marked running; returns the new state, or
    None when the job had already moved on (someone else recovered it)."""
    requeue = get_settings().on_crash == "requeue" and attempt < MAX_ATTEMPTS
    if requeue:
        if not store.transition(
            job_id, [RUNNING], QUEUED, attempt=attempt, queued_at=now(), runner_pid=None, heartbeat_at=None
        ):
            return None
        store.append_log(job_id, stamped(f"[queue] attempt {attempt} lost: {reason} -> requeued"))
        from backend.jobs.queue import enqueue

        enqueue(job_id)
        return QUEUED
    if attempt >= MAX_ATTEMPTS and get_settings().on_crash == "requeue":
        reason += f" (gave up after {attempt} attempts)"
    message = reason + " Retry the job to resume from its last checkpoint."
    if not store.transition(
        job_id, [RUNNING], "failed", attempt=attempt, finished_at=now(), error=message, runner_pid=None
    ):
        return None
    store.append_log(job_id, stamped(f"[queue] attempt {attempt} lost: {reason}"))
    return "failed"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(store: JobStore, *, supervised: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Recover running jobs whose consumer is gone: heartbeat older than the timeout, or (on this
    host) a consumer pid that no longer exists. `supervised`: ids this process is running itself.
    Returns the ids recovered."""
    recovered = []
    host = socket.gethostname()
    limit = now() - heartbeat_timeout_s()
    for record in store.list(state=RUNNING, limit=10_000):
        worker_host, _, worker_pid = (record.worker or ":").rpartition(":")
        if record.id in supervised:
            continue  # this process's supervisor threads heartbeat and judge these
        dead_here = worker_host == host and worker_pid.isdigit() and not _pid_alive(int(worker_pid))
        stale = (record.heartbeat_at or 0.0) < limit
        if dead_here or stale:
            why = "its worker process is gone" if dead_here else "its worker stopped sending heartbeats"
            reason = f"The worker {record.worker} running this job stopped ({why})."
            if handle_lost_run(store, record.id, record.attempts, reason):
                recovered.append(record.id)
    return recovered


def requeue_lost_messages(store: JobStore, min_age_s: float = 5.0) -> list[str]:
    """Re-enqueue jobs that are `queued` in the store but whose queue message was lost (a consumer
    killed between taking the message and claiming the job). Duplicate messages are harmless: the
    claim is a compare-and-set."""
    from backend.jobs.queue import enqueue, pending_job_ids

    pending = pending_job_ids()
    cutoff = now() - min_age_s
    lost = [
        r.id
        for r in store.list(state=QUEUED, limit=10_000)
        if r.id not in pending and (r.queued_at or r.submitted_at) < cutoff
    ]
    for job_id in lost:
        enqueue(job_id)
    return lost
