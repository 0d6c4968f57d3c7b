"""What happens to a job whose run was lost (runner or consumer killed), and the sweep that finds them.

`settings.on_crash` decides: "fail" marks the job failed with the reason; "requeue" marks it queued
again (up to `MAX_ATTEMPTS`), and the caller puts it on the queue, where it resumes from its state dir.
This module only changes records and returns its decision; it never touches the queue (the supervisor
and the consumer do). Every change is a compare-and-set on (state, attempt), so two consumers sweeping
at once recover a job only once.
"""

from __future__ import annotations

import os
import socket

from backend.config import get_settings
from backend.jobs.records import FAILED, QUEUED, RUNNING, now, stamped
from backend.jobs.store import JobStore

MAX_ATTEMPTS = 3


def handle_lost_run(store: JobStore, job_id: str, attempt: int, reason: str) -> str | None:
    """Apply the crash policy to `attempt` of a job still marked running. Returns the new state: QUEUED
    (the caller must enqueue the job), FAILED, or None when the job had already moved on."""
    policy = get_settings().on_crash
    if policy == "requeue" and attempt < MAX_ATTEMPTS:
        if not store.transition(
            job_id, [RUNNING], QUEUED, attempt=attempt, queued_at=now(), runner_pid=None, heartbeat_at=None
        ):
            return None
        store.append_log(job_id, stamped(f"[queue] attempt {attempt} lost: {reason} -> requeued"))
        return QUEUED
    if attempt >= MAX_ATTEMPTS and policy == "requeue":
        reason += f" (gave up after {attempt} attempts)"
    message = reason + " Retry the job to resume from its last checkpoint."
    if not store.transition(
        job_id, [RUNNING], FAILED, attempt=attempt, finished_at=now(), error=message, runner_pid=None
    ):
        return None
    store.append_log(job_id, stamped(f"[queue] attempt {attempt} lost: {reason}"))
    return FAILED


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(
    store: JobStore,
    *,
    supervised: set[str] | frozenset[str] = frozenset(),
    reachable_since: float | None = None,
) -> dict[str, str]:
    """Recover running jobs whose consumer is gone: heartbeat older than the timeout, or (on this
    host) a consumer pid that no longer exists. `supervised`: ids this process is running itself.
    `reachable_since`: when this process last regained the store (a Redis restart); a heartbeat is
    judged stale only once the store has been reachable for a whole timeout, since nobody could
    write one while it was down. Returns {job id: new state} for the jobs recovered; the caller
    enqueues those that are QUEUED again."""
    recovered: dict[str, str] = {}
    host = socket.gethostname()
    timeout = get_settings().heartbeat_timeout_s
    limit = now() - timeout
    judge_beats = reachable_since is None or reachable_since <= limit
    for record in store.list(state=RUNNING, limit=10_000):
        worker_host, _, worker_pid = (record.worker or ":").rpartition(":")
        if record.id in supervised:
            continue  # this process's supervisor threads heartbeat and judge these
        dead_here = worker_host == host and worker_pid.isdigit() and not _pid_alive(int(worker_pid))
        stale = judge_beats and (record.heartbeat_at or 0.0) < limit
        if dead_here or stale:
            why = "its worker process is gone" if dead_here else "its worker stopped sending heartbeats"
            reason = f"The worker {record.worker} running this job stopped ({why})."
            state = handle_lost_run(store, record.id, record.attempts, reason)
            if state:
                recovered[record.id] = state
    return recovered


def lost_messages(store: JobStore, pending: set[str], min_age_s: float = 5.0) -> list[str]:
    """Jobs `queued` in the store whose queue message is gone (a consumer killed between taking the
    message and claiming the job): not in `pending` (the ids with a message waiting or scheduled), queued
    more than `min_age_s` ago, and not passed on by a worker meanwhile (a worker that cannot run a job
    for want of GPUs schedules it again and stamps `heartbeat_at`). The caller re-enqueues them;
    a duplicate message is harmless, the claim is a compare-and-set."""
    cutoff = now() - min_age_s
    return [
        r.id
        for r in store.list(state=QUEUED, limit=10_000)
        if r.id not in pending and max(r.queued_at or r.submitted_at, r.heartbeat_at or 0.0) < cutoff
    ]
