"""The job store interface (the backends live in store_sqlite.py / store_redis.py; `stores.open_store`
picks one from the settings).

The store is the source of truth the UI reads (not Huey's result store). Every state change is a
compare-and-set (`transition`), so a job is claimed queued->running exactly once even if the queue
delivers its message twice, and a late writer (a killed attempt, a runner finishing after a cancel)
cannot overwrite a newer state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from backend.jobs.history import HistoryCursor, HistoryDelta
from backend.jobs.records import FIELDS, Artifact, HistoryPoint, JobRecord


class JobStore(ABC):
    """One interface, two backends: `SqliteJobStore` (embedded) and `RedisJobStore` (distributed)."""

    @abstractmethod
    def create(self, record: JobRecord) -> None: ...

    @abstractmethod
    def delete(self, job_id: str) -> None:
        """Remove a record and everything attached (used only to roll back a submit that failed)."""

    @abstractmethod
    def get(self, job_id: str, *, history: bool = True) -> JobRecord:
        """The record; raises `JobNotFound`."""

    @abstractmethod
    def list(
        self, state: str | None = None, kind: str | None = None, limit: int = 100, owner: str | None = None
    ) -> list[JobRecord]:
        """Newest first, without history; `owner` keeps only the jobs that session name submitted."""

    @abstractmethod
    def state_of(self, job_id: str) -> tuple[str, int] | None:
        """(state, attempts), cheap enough to poll several times a second; None if there is no such job."""

    def transition(
        self,
        job_id: str,
        from_states: Iterable[str],
        to_state: str | None = None,
        *,
        attempt: int | None = None,
        **fields: Any,
    ) -> bool:
        """Atomically: if the state is one of `from_states` (and `attempts == attempt` when given),
        set `state = to_state` (if given) and `fields`; return whether it happened."""
        if to_state is not None:
            fields["state"] = to_state
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"not job record fields: {sorted(unknown)}")
        return self._compare_and_set(job_id, list(from_states), attempt, fields)

    @abstractmethod
    def _compare_and_set(
        self, job_id: str, from_states: list[str], attempt: int | None, fields: dict
    ) -> bool:
        """The backend's atomic conditional update (fields already checked)."""

    def add_history(self, job_id: str, point: HistoryPoint) -> None:
        self.extend_history(job_id, [point])

    @abstractmethod
    def extend_history(self, job_id: str, points: list[HistoryPoint]) -> None:
        """Append metric points; past `history.LIMIT` points the older ones are merged (`history.compact`)."""

    @abstractmethod
    def history_since(self, job_id: str, cursor: HistoryCursor | None = None) -> HistoryDelta:
        """The points a reader at `cursor` has not seen (all of them, `reset`, after a merge or for None)."""

    @abstractmethod
    def append_log(self, job_id: str, line: str) -> None: ...

    @abstractmethod
    def logs(self, job_id: str, tail: int = 200) -> list[str]: ...

    @abstractmethod
    def add_artifact(self, job_id: str, artifact: Artifact) -> None: ...

    @abstractmethod
    def artifacts(self, job_id: str) -> list[Artifact]: ...

    # Consumers announce themselves, so the app can tell whether anything will run a queued job.
    @abstractmethod
    def beat_worker(self, worker_id: str, info: dict) -> None:
        """Record that `worker_id` is alive now, with `info` (host, pid, threads, device, started_at)."""

    @abstractmethod
    def forget_worker(self, worker_id: str) -> None: ...

    @abstractmethod
    def worker_beats(self) -> list[dict]:
        """Every announced worker's info with its `beat_at` time, however old."""
