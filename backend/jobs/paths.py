"""Where a job's files live: `<artifacts_dir>/<job_id>/` (shared by workers and the app), with the
persistent `state/` subfolder a retried job resumes from."""

from __future__ import annotations

from pathlib import Path

from backend.config import get_settings


def job_dir(job_id: str) -> Path:
    return get_settings().artifacts_dir / job_id


def state_dir(job_id: str) -> Path:
    return job_dir(job_id) / "state"


def runner_output(job_id: str, attempt: int) -> Path:
    """stdout/stderr of one attempt's runner process (its tail explains a crash)."""
    return job_dir(job_id) / f"runner-{attempt}.log"
