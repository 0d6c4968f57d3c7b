"""What the Jobs page shows about a job: a table row, the live curves, the ETA, the checkpoints it made."""

from __future__ import annotations

import time
from collections.abc import Sequence

from backend.jobs.records import TERMINAL, Artifact, HistoryPoint, JobRecord

CHECKPOINT_ARTIFACT = "checkpoint"


def duration_text(seconds: float | None) -> str:
    """`1h 02m`, `3m 05s`, `12s` or an em dash."""
    if seconds is None:
        return "—"
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def eta_seconds(record: JobRecord, now: float | None = None) -> float | None:
    """Time left: the runner's own estimate, else extrapolated from the elapsed time and the fraction."""
    if record.state in TERMINAL:
        return 0.0
    p = record.progress
    if p.eta_s is not None:
        if p.updated_at is not None:
            return max(0.0, p.eta_s - ((now or time.time()) - p.updated_at))
        return p.eta_s
    elapsed = record.duration_s
    if elapsed is None or not p.fraction or p.fraction <= 0:
        return None
    return elapsed * (1.0 - p.fraction) / p.fraction


def table_row(record: JobRecord) -> dict:
    """One row of the jobs table."""
    return {
        "id": record.id,
        "kind": record.kind,
        "owner": record.owner or "lab",
        "state": record.state,
        "progress": round(100.0 * (record.progress.fraction or 0.0), 1),
        "eta": duration_text(eta_seconds(record)) if record.state == "running" else "",
        "submitted": time.strftime("%H:%M:%S", time.localtime(record.submitted_at)),
        "duration": duration_text(record.duration_s),
        "message": record.error or record.progress.message or "",
    }


def loss_series(history: Sequence[HistoryPoint]) -> dict[str, list[tuple[float, float]]]:
    """Every metric in the progress history as (step, value) points; a step-less point uses its report's
    index (a merged point the middle of the reports it stands for)."""
    names: list[str] = []
    for point in history:
        names.extend(n for n in point.metrics if n not in names)
    series: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    reports = 0
    for point in history:
        x = float(point.step) if point.step is not None else reports + (point.count - 1) / 2
        reports += point.count
        for name, value in point.metrics.items():
            series[name].append((x, float(value)))
    return series


def curve_groups(series: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, list]]:
    """Split the metrics into charts of comparable scale: training losses, validation, the rest."""
    groups: dict[str, dict[str, list]] = {"Training losses": {}, "Validation": {}, "Other": {}}
    for name, points in series.items():
        if name.startswith("val_"):
            groups["Validation"][name] = points
        elif "loss" in name:
            groups["Training losses"][name] = points
        else:
            groups["Other"][name] = points
    return {title: g for title, g in groups.items() if g}


def checkpoint_ids(artifacts: Sequence[Artifact], result: dict | None = None) -> list[str]:
    """Checkpoint ids a job produced (its `checkpoint` artifacts, else `result['checkpoint']`)."""
    ids = [str(a.value) for a in artifacts if a.kind == CHECKPOINT_ARTIFACT]
    if not ids and result and result.get("checkpoint"):
        ids = [str(result["checkpoint"])]
    return ids


def inspect_link_ids(record: JobRecord, made: Sequence[str]) -> list[str]:
    """Checkpoints to open in Inspect: the job's base model (its baseline) first, then what it made."""
    base = record.config.get("model") or record.config.get("baseline")
    return ([str(base)] if base else []) + [m for m in made if m != base]
