"""A JobContext that keeps what a job reports, for running job kinds without a queue."""

from __future__ import annotations

from pathlib import Path


class RecordingContext:
    """Implements the JobContext protocol by keeping what the job reports."""

    def __init__(self, root: Path):
        self.job_id, self.device = "test-job", "cpu"
        self.state_dir, self.artifacts_dir = root / "state", root / "artifacts"
        self.reports: list[dict] = []
        self.artifacts: list[tuple] = []
        self.lines: list[str] = []

    def progress(self, p):
        self.reports.append(
            {"fraction": p.fraction, "step": p.step, "metrics": dict(p.metrics), "message": p.message}
        )

    def log(self, line):
        self.lines.append(line)

    def add_artifact(self, kind, value, label=None):
        self.artifacts.append((kind, value, label))
