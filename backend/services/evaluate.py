"""The Evaluate page's services: build and submit an evaluation job, turn its result into tables."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from backend.access import Session
from backend.config import get_settings
from backend.errors import InvalidConfig
from backend.explain import METHODS
from backend.jobs.records import JobRecord
from backend.services.checkpoints import input_size, registry

__all__ = ["input_size"]


def interpreter_names() -> list[str]:
    return list(METHODS)


def default_interpreters(fooled_id: str) -> list[str]:
    """The interpreter the checkpoint was fooled with, plus the fast methods (to see transfer)."""
    fooled_with = (registry().card(fooled_id).config or {}).get("interpreter")
    fast = [n for n, s in METHODS.items() if s.cost == "fast"]
    return ([fooled_with] if fooled_with in METHODS else []) + [n for n in fast if n != fooled_with][:3]


def fooled_choices() -> dict[str, str]:
    """Fooled image checkpoints, id -> label, oldest first (the Evaluate page's multiselect)."""
    from backend.services.checkpoints import label, list_cards

    return {c.id: label(c) for c in list_cards("image") if c.kind == "fooled"}


def build_config(
    baseline: str, fooled: str | list[str], dataset: dict | None, interpreters: list[str], images: int = 128
) -> dict:
    """The evaluation job's config, validated by the job kind (`InvalidConfig` says what is wrong).

    `fooled` may list several checkpoints: one job evaluates them all, and the transfer matrix gets a
    column per fooled model. `dataset=None` evaluates on the held-out split the fooling run validated on.
    """
    from backend.jobs.kinds import get_kind

    fooled = [fooled] if isinstance(fooled, str) else list(fooled)
    config = {"baseline": baseline, "fooled": fooled, "dataset": dataset, "interpreters": list(interpreters)}
    if not interpreters:
        raise InvalidConfig("Pick at least one interpreter to measure the FSR with.")
    if not fooled:
        raise InvalidConfig("Pick at least one fooled checkpoint.")
    if baseline in fooled:
        raise InvalidConfig("The baseline is among the fooled checkpoints; pick the fooled copies only.")
    return get_kind("evaluate").validate(config | {"images": int(images)})


def submit(config: dict, *, session: Session | None = None) -> str:
    """Queue the evaluation for `session`; an identical one already queued or running is joined."""
    from backend.services import job_follow

    return job_follow.submit("evaluate", config, session=session)


def finished_runs(baseline: str | None = None, fooled: str | list[str] | None = None) -> list[JobRecord]:
    """Succeeded evaluation jobs of this baseline that evaluated (any of) `fooled`, newest first."""
    from backend import jobs

    runs = jobs.list_jobs(state="succeeded", kind="evaluate", limit=200)
    return [
        r
        for r in runs
        if (baseline is None or r.config.get("baseline") == baseline)
        and (
            fooled is None
            or set([fooled] if isinstance(fooled, str) else fooled) & set(r.config.get("fooled") or [])
        )
    ]


def run_label(record: JobRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.finished_at or record.submitted_at))
    return f"{when} · {record.id} · {', '.join(record.config.get('interpreters', []))}"


@dataclass
class EvalView:
    fsr_rows: list[dict]
    accuracy_rows: list[dict]
    transfer: tuple[list[str], list[str], list[list[float]]] | None = None
    similarity: dict[str, list[float]] = field(default_factory=dict)


def full_report(record: JobRecord) -> dict:
    """The evaluation's whole report: the JSON file the job published (plain JSON, never a pickle).

    The file artifact may carry its path in `path` or (as the evaluate kind stores it) in `value`;
    only files under the artifacts dir are read.
    """
    from backend import jobs

    root = get_settings().artifacts_dir.resolve()
    for art in jobs.artifacts(record.id):
        candidate = art.file or (
            Path(art.value) if art.kind == "file" and isinstance(art.value, str) else None
        )
        if candidate is None or candidate.suffix != ".json":
            continue
        candidate = candidate.resolve()
        if root in candidate.parents and candidate.is_file():
            return json.loads(candidate.read_text())
    raise InvalidConfig(f"Evaluation {record.id} has no report file any more; run the evaluation again.")


def view(record: JobRecord, similarity_measure: str = "spearman") -> EvalView:
    """Tables and charts of one finished evaluation job."""
    return report_view(full_report(record), similarity_measure)


def report_view(report: dict, similarity_measure: str = "spearman") -> EvalView:
    """Tables and charts of an evaluation report (layout of Krishna2021 Tables 2 and 3)."""
    names = {m["id"]: m["name"] for m in report["models"]}
    cols = [f"{m['attack']}/{m['interpreter']}" for m in report["models"]]
    fsr_rows, matrix = [], []
    for method, row in report["fsr"].items():
        cells = [row.get(c) for c in cols]
        matrix.append([c["fooled"] if c and c["fooled"] is not None else float("nan") for c in cells])
        for c, cell in zip(cols, cells):
            if cell:
                fsr_rows.append(
                    {
                        "interpreter": method,
                        "fooled model": c,
                        "FSR fooled": cell["fooled"],
                        "FSR baseline": cell["baseline"],
                    }
                )
    accuracy_rows = [
        {"checkpoint": names.get(k, k), **{m: v for m, v in row.items() if isinstance(v, float | int)}}
        for k, row in report["accuracy"].items()
    ]
    similarity = {
        f"{method} · {c}": values[similarity_measure]
        for method, per_col in report.get("similarity", {}).items()
        for c, values in per_col.items()
        if similarity_measure in values
    }
    transfer = (list(report["fsr"]), cols, matrix) if matrix else None
    return EvalView(fsr_rows, accuracy_rows, transfer, similarity)


def to_csv(v: EvalView) -> bytes:
    """FSR and accuracy rows in one CSV (a `table` column says which)."""
    buf = io.StringIO()
    rows = [{"table": "fsr", **r} for r in v.fsr_rows] + [{"table": "accuracy", **r} for r in v.accuracy_rows]
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    writer = csv.DictWriter(buf, fieldnames=fields or ["table"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()
