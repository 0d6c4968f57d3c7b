"""The `JobContext` a kind's `run(config, ctx)` receives in the runner process: progress with a
metric history, log lines, artifacts and the persistent per-job state dir."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from backend.jobs import paths
from backend.jobs.records import RUNNING, Artifact, HistoryPoint, JobProgress, now, stamped
from backend.jobs.store import JobStore
from backend.progress import Progress

PROGRESS_MIN_INTERVAL_S = 0.2  # plain progress writes are throttled; metric points never are


class RunnerContext:
    """Writes straight to the job store; every write is conditional on this attempt still running,
    so a cancelled or superseded attempt cannot change the record."""

    def __init__(self, store: JobStore, job_id: str, attempt: int, device: str):
        self.store = store
        self.job_id = job_id
        self.attempt = attempt
        self.device = device
        self.artifacts_dir = paths.job_dir(job_id)
        self.state_dir = paths.state_dir(job_id)
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._t0 = time.monotonic()
        self._f0: float | None = None
        self._last_write = 0.0

    def progress(self, progress: Progress) -> None:
        """Record one report (`backend.progress`): the record's fraction, step, total, ETA and message;
        metrics, if any, as a history point at `progress.step` (never throttled)."""
        fraction, step, metrics = progress.fraction, progress.step, progress.metrics
        total = int(progress.total) if step is not None else None
        if metrics:
            clean = {str(k): float(v) for k, v in metrics.items()}
            self.store.add_history(self.job_id, HistoryPoint(step, now(), clean))
        elapsed = time.monotonic() - self._t0
        if self._f0 is None:
            self._f0 = fraction  # a resumed run starts part-way: estimate the rate from here on
        done = fraction - self._f0
        eta = elapsed * (1.0 - fraction) / done if done > 1e-9 else None
        if not metrics and fraction < 1.0 and time.monotonic() - self._last_write < PROGRESS_MIN_INTERVAL_S:
            return
        self._last_write = time.monotonic()
        report = JobProgress(fraction, step, total, eta, progress.message, now())
        self.store.transition(self.job_id, [RUNNING], attempt=self.attempt, progress=report.__dict__)

    def log(self, line: str) -> None:
        for part in str(line).splitlines() or [""]:
            self.store.append_log(self.job_id, stamped(part))

    def add_artifact(self, kind: str, value: Any, label: str | None = None) -> None:
        """`value` may be JSON-able data (a checkpoint id, a table), bytes (written to a file named
        by `label`), or a path (copied under the job's artifacts dir unless already there)."""
        path: Path | None = None
        if isinstance(value, bytes | bytearray):
            if not label:
                raise ValueError("a bytes artifact needs a label: it becomes the file name")
            path = self.artifacts_dir / Path(label).name
            path.write_bytes(bytes(value))
            value = path.name
        elif isinstance(value, Path):
            root = self.artifacts_dir.resolve()
            path = value.resolve()
            if root not in path.parents:
                shutil.copyfile(path, root / path.name)
                path = root / path.name
            value = str(path.relative_to(root))
        else:
            json.dumps(value)  # fail here, in the job, if it cannot be stored
        self.store.add_artifact(self.job_id, Artifact(kind, value, label, str(path) if path else None))
