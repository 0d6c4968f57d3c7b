"""Submit a job and follow it from a page: the one helper every page uses for its jobs.

    job_id = job_follow.submit("fool", config)        # InvalidConfig / QueueUnavailable, nothing queued
    s = job_follow.status(job_id)                      # one record read: state, bar text, why it waits
    points = job_follow.history(st.session_state, job_id)   # the metric curves, fetched by cursor

A poll costs one record read without history, plus the metric points reported since the last poll
(`jobs.history_since`), however long the job has run; a queued job also reads the worker list, to say
why it has not started.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from backend import jobs
from backend.access import Session
from backend.jobs.gpus import gpus_needed
from backend.jobs.gpus import wait_reason as gpu_wait_reason
from backend.jobs.history import HistoryCursor
from backend.jobs.records import QUEUED, RUNNING, HistoryPoint, JobRecord
from backend.jobs.workers import alive_workers
from backend.services import policy
from backend.services.jobs_view import duration_text, eta_seconds
from backend.singleflight import FLIGHTS

FEEDS_KEY = "_job_follow_feeds"
# Kinds that only measure (they make no checkpoint): the same config asked for while one is queued or
# running joins that job instead of queueing a copy (a class pressing "Run evaluation" together).
SHARED_KINDS = ("evaluate", "detect", "decoys", "tabular_report", "defend_evaluate")


def submit(kind: str, config: dict, *, session: Session | None = None) -> str:
    """Validate and queue a job for `session` (its owner); returns its id. `InvalidConfig` says what to
    fix, `QueueUnavailable` that the queue is down, `QuotaExceeded` / `NotAllowed` /
    `DiskBudgetExceeded` why the session may not; in every case nothing was queued. A measuring job
    (`SHARED_KINDS`) identical to one queued or running returns that job's id."""
    who = policy.check_submit(session, kind, config)
    if kind not in SHARED_KINDS:
        return jobs.submit(kind, config, owner=who.name)
    text = json.dumps(jobs.validate(kind, config), sort_keys=True)
    clean, key = json.loads(text), f"job|{kind}|{text}"  # as the store gives it back (lists, not tuples)
    return FLIGHTS.do(key, lambda: _same_or_new(kind, config, clean, who.name)).value


def _same_or_new(kind: str, config: dict, clean: dict, owner: str) -> str:
    for state in (QUEUED, RUNNING):
        for record in jobs.list_jobs(state=state, kind=kind, limit=500):
            if record.config == clean:
                return record.id
    return jobs.submit(kind, config, owner=owner)


def cancel(job_id: str, *, session: Session | None = None) -> JobRecord:
    """Cancel a job the session may cancel (its own; any for the presenter): `NotAllowed` otherwise."""
    policy.check_cancel(session, jobs.get(job_id, history=False))
    return jobs.cancel(job_id)


def retry(job_id: str, *, session: Session | None = None) -> str:
    """Retry a failed or cancelled job of the session's (any for the presenter), within its quota."""
    record = jobs.get(job_id, history=False)
    policy.check_cancel(session, record, action="retry")
    policy.check_submit(session, record.kind, record.config)
    return jobs.retry(job_id)


@dataclass(frozen=True)
class JobStatus:
    record: JobRecord  # without history (see `history`)
    fraction: float  # in [0, 1], for a progress bar
    text: str  # "42% · step 420/1000 · ETA 3m 05s"
    waiting: str | None = (
        None  # why a queued job has not started ("waiting for a worker with 2 free GPUs; ...")
    )

    @property
    def job_id(self) -> str:
        return self.record.id

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def done(self) -> bool:
        return self.record.done

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def message(self) -> str | None:
        return self.record.progress.message


def progress_text(record: JobRecord) -> str:
    """The progress bar's caption: percent, step of total, and the ETA while running."""
    text = f"{100 * float(record.progress.fraction or 0.0):.0f}%"
    if record.progress.step is not None and record.progress.total:
        text += f" · step {record.progress.step}/{record.progress.total}"
    if record.state == RUNNING:
        text += f" · ETA {duration_text(eta_seconds(record))}"
    return text


def wait_reason(record: JobRecord) -> str | None:
    """Why a queued job has not started yet (None for any other state)."""
    if record.state != QUEUED:
        return None
    return gpu_wait_reason(gpus_needed(record.config), alive_workers())


def status(job_id: str) -> JobStatus:
    """Where a job stands now (`JobNotFound`, `QueueUnavailable`)."""
    record = jobs.get(job_id, history=False)
    fraction = min(max(float(record.progress.fraction or 0.0), 0.0), 1.0)
    return JobStatus(record, fraction, progress_text(record), wait_reason(record))


@dataclass
class HistoryFeed:
    """One job's metric history as a page has fetched it so far; `update` adds what changed since."""

    job_id: str
    cursor: HistoryCursor | None = None
    points: list[HistoryPoint] = field(default_factory=list)

    def update(self) -> list[HistoryPoint]:
        delta = jobs.history_since(self.job_id, self.cursor)
        self.points = list(delta.points) if delta.reset else self.points + delta.points
        self.cursor = delta.cursor
        return self.points


def history(state: MutableMapping, job_id: str) -> list[HistoryPoint]:
    """The job's metric points, kept up to date in `state` (a page passes `st.session_state`): the first
    call fetches them all, each later one only the points reported since."""
    feeds = state.setdefault(FEEDS_KEY, {})
    feed = feeds.get(job_id)
    if feed is None:
        feed = feeds[job_id] = HistoryFeed(job_id)
    return feed.update()
