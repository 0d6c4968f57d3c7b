"""The job record: what the UI reads about a job (state, progress, history, artifacts, timings).

Both store backends (SQLite, Redis) keep the same flat fields; this module converts between the
dataclasses and those fields, so the two backends cannot drift apart.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)

# Fields kept as JSON text (dicts); all others are str / int / float / None.
JSON_FIELDS = ("config", "progress", "result")
FIELDS = (
    "id",
    "kind",
    "module",
    "config",
    "state",
    "submitted_at",
    "queued_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "worker",
    "runner_pid",
    "attempts",
    "progress",
    "error",
    "result",
    "owner",
)


def now() -> float:
    """Wall-clock seconds (records are compared across machines, so not monotonic)."""
    return time.time()


def stamped(line: str) -> str:
    """A log line with the local time in front, as every job log line is shown."""
    return f"{time.strftime('%H:%M:%S')} {line}"


@dataclass
class JobProgress:
    """A job record's latest progress (what the runner made of the last `backend.progress.Progress`);
    `eta_s` is estimated by the runner from its own rate."""

    fraction: float = 0.0
    step: int | None = None
    total: int | None = None
    eta_s: float | None = None
    message: str | None = None
    updated_at: float | None = None


@dataclass
class HistoryPoint:
    """One reported set of metrics (a point on the live loss curves), or several merged into one.

    The store keeps a bounded number of points per job (`backend.jobs.history`): older points are merged
    into their mean, `count` says how many reports one stands for, and `counts` how many of those had
    each metric where that differs from `count` (a validation metric reported every 50th step)."""

    step: int | None
    time: float
    metrics: dict[str, float]
    count: int = 1
    counts: dict[str, int] | None = None

    def weight(self, name: str) -> int:
        """How many reports of metric `name` this point averages."""
        return (self.counts or {}).get(name, self.count)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "time": self.time, "metrics": self.metrics}
        if self.count != 1:
            out["count"] = self.count
        if self.counts:
            out["counts"] = self.counts
        return out


@dataclass
class Artifact:
    """Something a job produced: a checkpoint id, a table, a file under the job's artifacts dir."""

    kind: str
    value: Any
    label: str | None = None
    path: str | None = None  # absolute path when the artifact is a file

    @property
    def file(self) -> Path | None:
        return Path(self.path) if self.path else None


@dataclass
class JobRecord:
    id: str
    kind: str
    config: dict
    state: str = QUEUED
    module: str | None = None  # the module that registers the kind: the runner imports only that
    submitted_at: float = field(default_factory=now)
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    worker: str | None = None  # "hostname:pid" of the consumer that ran (or runs) it
    runner_pid: int | None = None  # the live runner process, None when none is running
    attempts: int = 0
    progress: JobProgress = field(default_factory=JobProgress)
    error: str | None = None
    result: dict | None = None
    history: list[HistoryPoint] = field(default_factory=list)  # filled by `get`, not by `list_jobs`
    owner: str | None = None  # the session name that submitted it (None: the lab itself, the CLI)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or now()) - self.started_at

    def series(self, name: str) -> tuple[list[int | None], list[float]]:
        """Steps and values of one metric over the history (for a live curve)."""
        points = [(p.step, p.metrics[name]) for p in self.history if name in p.metrics]
        return [s for s, _ in points], [v for _, v in points]

    def to_fields(self) -> dict[str, Any]:
        """Flat fields for a store row / hash (JSON text for dicts)."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if name == "progress":
                value = asdict(value)
            out[name] = encode_field(name, value)
        return out

    @classmethod
    def from_fields(cls, fields: dict[str, Any], history: list[HistoryPoint] | None = None) -> JobRecord:
        values = {name: decode_field(name, fields.get(name)) for name in FIELDS if name in fields}
        values["progress"] = JobProgress(**(values.get("progress") or {}))
        values["config"] = values.get("config") or {}
        return cls(**values, history=history or [])


def encode_field(name: str, value: Any) -> Any:
    if name in JSON_FIELDS and value is not None:
        return json.dumps(value, sort_keys=True)
    return value


def decode_field(name: str, value: Any) -> Any:
    if name in JSON_FIELDS and isinstance(value, str | bytes):
        return json.loads(value)
    return value
