"""The job facade: the only thing pages import to run long work off the Streamlit thread.

    job_id = jobs.submit("fool", config)   # validated now; InvalidConfig -> nothing is queued
    jobs.get(job_id).state / .progress / .history
    delta = jobs.history_since(job_id, cursor)   # only the metric points a poll has not seen
    jobs.cancel(job_id); jobs.retry(job_id); jobs.logs(job_id); jobs.artifacts(job_id)

Importing this does not import torch. Records live in the job store (SQLite in the data dir, or Redis
when FOOLING_LAB_QUEUE_URL is set); `python -m backend worker` consumes the queue. Every call raises
`QueueUnavailable` (never a traceback's worth of redis errors) while the store cannot be reached.
"""

from __future__ import annotations

import json
import secrets
import time

from backend.config import get_settings
from backend.errors import InvalidConfig, QueueUnavailable
from backend.jobs.history import HistoryCursor, HistoryDelta
from backend.jobs.kinds import get_kind
from backend.jobs.records import CANCELLED, FAILED, QUEUED, RUNNING, STATES, Artifact, JobRecord, now, stamped
from backend.jobs.stores import open_store

__all__ = [
    "submit",
    "validate",
    "get",
    "history_since",
    "list_jobs",
    "cancel",
    "retry",
    "logs",
    "artifacts",
    "HistoryCursor",
    "HistoryDelta",
    "JobRecord",
]

RETRY_WAIT_S = 5.0  # how long retry waits for a cancelled attempt's process to be gone


def enqueue(job_id: str) -> None:
    from backend.jobs.queue import enqueue as put  # Huey (and redis) load only when something is queued

    put(job_id)


def submit(kind: str, config: dict, *, owner: str | None = None) -> str:
    """Validate `config` with the kind, record the job and queue it; returns the job id. `owner` is the
    session name that submits it (the Jobs page's "mine"); who may submit what is decided above this
    facade (`backend.services.policy`)."""
    job_kind = get_kind(kind)
    clean = validate(kind, config)
    record = JobRecord(
        id=f"{kind}-{secrets.token_hex(6)}",
        kind=kind,
        config=clean,
        module=type(job_kind).__module__,
        queued_at=now(),
        owner=owner,
    )
    store = open_store()
    store.create(record)
    try:
        enqueue(record.id)
    except QueueUnavailable:
        store.delete(record.id)
        raise
    return record.id


def validate(kind: str, config: dict) -> dict:
    """The config as the kind normalises it (what `submit` stores); `InvalidConfig` says what is wrong."""
    clean = get_kind(kind).validate(dict(config))
    try:
        json.dumps(clean)
    except (TypeError, ValueError) as err:
        raise InvalidConfig(f"The {kind} config cannot be stored as JSON ({err}); use plain values.") from err
    return clean


def get(job_id: str, *, history: bool = True) -> JobRecord:
    """The record with its metric history (at most `history.LIMIT` points, older ones merged);
    `JobNotFound` if there is none."""
    return open_store().get(job_id, history=history)


def history_since(job_id: str, cursor: HistoryCursor | None = None) -> HistoryDelta:
    """The metric points after `cursor` (all of them, `reset=True`, for None or after a merge of old
    points): a page polling a long job fetches only what changed. `delta.cursor` is the next cursor."""
    return open_store().history_since(job_id, cursor)


def list_jobs(
    state: str | None = None, kind: str | None = None, limit: int = 100, *, owner: str | None = None
) -> list[JobRecord]:
    """Newest first. Records come without history (use `get` for the curves); `owner` keeps one
    session's jobs."""
    if state is not None and state not in STATES:
        raise InvalidConfig(f"Unknown job state {state!r}; one of {', '.join(STATES)}")
    return open_store().list(state=state, kind=kind, limit=limit, owner=owner)


def cancel(job_id: str) -> JobRecord:
    """Cancel a queued job (it never runs) or a running one (its process is stopped within 2 s).
    A finished job is left as it is. Returns the record after the change."""
    store = open_store()
    record = store.get(job_id, history=False)
    for state in (QUEUED, RUNNING):
        if record.state == state and store.transition(
            job_id, [state], CANCELLED, attempt=record.attempts, finished_at=now()
        ):
            store.append_log(job_id, stamped(f"[queue] cancelled while {state}"))
            break
    return store.get(job_id)


def retry(job_id: str) -> str:
    """Run a failed or cancelled job again under the same id, with the same state dir, so it resumes
    from its last checkpoint. Returns the job id."""
    store = open_store()
    deadline = time.monotonic() + RETRY_WAIT_S
    record = store.get(job_id, history=False)
    while _still_stopping(record) and time.monotonic() < deadline:
        time.sleep(0.05)  # the previous attempt is still being stopped: never run two at once
        record = store.get(job_id, history=False)
    stopping = _still_stopping(record)
    if record.state not in (FAILED, CANCELLED) or stopping:
        raise InvalidConfig(
            f"Job {job_id} is {record.state}; only a failed or cancelled job can be retried"
            + (" (its last run is still stopping; try again)" if stopping else ".")
        )
    if not store.transition(
        job_id, [record.state], QUEUED, attempt=record.attempts, queued_at=now(), finished_at=None, error=None
    ):
        raise InvalidConfig(f"Job {job_id} changed state meanwhile; look at it again before retrying.")
    store.append_log(job_id, stamped(f"[queue] retry after {record.state} (attempt {record.attempts + 1})"))
    try:
        enqueue(job_id)
    except QueueUnavailable:
        store.transition(
            job_id, [QUEUED], record.state, attempt=record.attempts, finished_at=now(), error=record.error
        )
        raise
    return job_id


def _still_stopping(record: JobRecord) -> bool:
    """A previous attempt's runner may still be alive: its supervisor has not reported it gone, and
    that supervisor is itself alive (heartbeat fresh). Never start a second run next to it."""
    fresh = now() - (record.heartbeat_at or 0.0) < get_settings().heartbeat_timeout_s
    return record.runner_pid is not None and fresh


def logs(job_id: str, tail: int = 200) -> list[str]:
    """The last `tail` log lines (the kind's own, and the queue's `[queue]` lines)."""
    store = open_store()
    store.state_of(job_id) or store.get(job_id, history=False)  # JobNotFound for an unknown id
    return store.logs(job_id, tail) if tail > 0 else []


def artifacts(job_id: str) -> list[Artifact]:
    """What the job published: checkpoint ids, tables, files (`Artifact.file`)."""
    store = open_store()
    store.state_of(job_id) or store.get(job_id, history=False)
    return store.artifacts(job_id)
