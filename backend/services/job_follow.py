"""Submit a job and follow it from a page: the one helper every page uses for its jobs.

    job_id = job_follow.submit("fool", config)        # InvalidConfig / QueueUnavailable, nothing queued
    s = job_follow.status(job_id)                      # one record read: state, bar text, why it waits
    points = job_follow.history(st.session_state, job_id)   # the metric curves, fetched by cursor

A poll costs one record read without history, plus the metric points reported since the last poll
(`jobs.history_since`), however long the job has run; a queued job also reads the worker list, to say
why it has not started.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

from backend import jobs
from backend.jobs.gpus import gpus_needed
from backend.jobs.gpus import wait_reason as gpu_wait_reason
from backend.jobs.history import HistoryCursor
from backend.jobs.records import QUEUED, RUNNING, HistoryPoint, JobRecord
from backend.jobs.workers import alive_workers
from backend.services.jobs_view import duration_text, eta_seconds

FEEDS_KEY = "_job_follow_feeds"


def submit(kind: str, config: dict) -> str:
    """Validate and queue a job; returns its id. `InvalidConfig` says what to fix, `QueueUnavailable`
    that the queue is down; in both cases nothing was queued."""
    return jobs.submit(kind, config)


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
