"""Which job store to open (SQLite in the data dir, or Redis when a queue URL is set), and a patient
wrapper for the processes that must ride out a store restart (consumers and job runners).

The app opens the plain store: while the store is down a page says "queue unavailable" at once. A
consumer or a runner opens `patient=True`: each call waits for the store to come back (up to
`settings.store_wait_s`), so a Redis restart pauses a running job instead of failing it.
"""

from __future__ import annotations

import time
from typing import Any, cast

from backend.config import Settings, get_settings
from backend.errors import QueueUnavailable
from backend.jobs.store import JobStore

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0


def open_store(settings: Settings | None = None, *, patient: bool = False) -> JobStore:
    """The SQLite store in the data dir, or the Redis store when a queue URL is configured."""
    settings = settings or get_settings()
    if settings.queue_url:
        from backend.jobs.store_redis import RedisJobStore

        store: JobStore = RedisJobStore(settings.queue_url)
    else:
        from backend.jobs.store_sqlite import SqliteJobStore

        store = SqliteJobStore(settings.jobs_db)
    return cast(JobStore, PatientStore(store, settings.store_wait_s)) if patient else store


class PatientStore:
    """A store whose calls retry on `QueueUnavailable` with back-off until `wait_s` has passed.

    A retried write may have happened once already (the server applied it, the reply was lost): appends
    (logs, history) can then repeat, and a compare-and-set answers False; callers that must know whether
    their own transition won check the record (see `supervisor._claim`)."""

    def __init__(self, store: JobStore, wait_s: float):
        self.store = store
        self.wait_s = wait_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not callable(attr):
            return attr

        def patiently(*args: Any, **kwargs: Any) -> Any:
            deadline = time.monotonic() + self.wait_s
            delay = RETRY_FIRST_S
            while True:
                try:
                    return attr(*args, **kwargs)
                except QueueUnavailable:
                    if time.monotonic() + delay > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)

        return patiently
