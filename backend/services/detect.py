"""The Detect page's services: its form's fields (declared in `backend.detect.options`), build and
submit a detect job, and turn its result into chart series.

Also the helpers the Decoys page shares (finished runs of a kind, the maps a job saved as .npz).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from backend import forms
from backend.detect import options
from backend.forms import FieldSpec
from backend.jobs.records import JobRecord

TEST_LABELS = options.TEST_LABELS


def common_fields() -> tuple[FieldSpec, ...]:
    """Method, tests and number of images."""
    return options.common_fields()


def test_fields(test: str) -> tuple[FieldSpec, ...]:
    """One test's own settings (none for `reference`)."""
    return options.TEST_FIELDS[test]


def assemble_config(
    suspect: str,
    baseline: str | None,
    common: dict[str, Any],
    method_values: dict[str, Any],
    test_values: dict[str, dict[str, Any]],
) -> dict:
    """The validated detect config from the form's raw values (`InvalidConfig` names a bad field): the
    chosen method's parameters, each test's settings, shapes images at the suspect's input size."""
    from backend.services.form_fields import run_values

    tests = {t: forms.coerce_all(f, test_values.get(t, {})) for t, f in options.TEST_FIELDS.items() if f}
    return build_config(
        suspect=suspect,
        baseline=baseline if baseline != suspect else None,
        **run_values(suspect, common_fields(), common, method_values, seed=123),
        **tests,
    )


def build_config(**values) -> dict:
    """The detect job's config from the form, validated by the job kind (`InvalidConfig` says why)."""
    from backend.jobs.kinds import get_kind

    return get_kind("detect").validate({k: v for k, v in values.items() if v is not None})


def submit(kind: str, config: dict, *, session=None) -> str:
    """Queue a detect / decoys job for `session` (quota and disk budget checked; `backend.access`)."""
    from backend.services import job_follow

    return job_follow.submit(kind, config, session=session)


def runs(kind: str, key: str, checkpoint: str | None = None, states=("succeeded",)) -> list[JobRecord]:
    """Jobs of `kind` in `states` whose config[`key`] is `checkpoint` (any when None), newest first."""
    from backend import jobs

    out = []
    for state in states:
        out += jobs.list_jobs(state=state, kind=kind, limit=200)
    out = [r for r in out if checkpoint is None or r.config.get(key) == checkpoint]
    return sorted(out, key=lambda r: r.submitted_at, reverse=True)


def run_label(record: JobRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.finished_at or record.submitted_at))
    return f"{when} · {record.id} · {record.config.get('method', '')}"


def load_maps(job_id: str) -> dict[str, np.ndarray]:
    """The .npz maps a detect or decoys job published (never unpickled)."""
    from backend import jobs

    for art in jobs.artifacts(job_id):
        if art.kind == "maps" and art.file is not None and art.file.is_file():
            with np.load(art.file, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
    return {}


def weight_noise_series(result: dict, key: str) -> dict[str, list[tuple[float, float]]]:
    """(sigma, mean over seeds) per checkpoint for one measured quantity (Fig. 4.4 of the thesis)."""
    out = {}
    for role in ("baseline", "suspect"):
        curve = (result.get(role) or {}).get("weight_noise", {}).get("curve")
        if curve and key in curve:
            out[role] = list(zip(curve["sigma"], curve[key]))
    return out


def randomization_series(result: dict, key: str) -> tuple[dict[str, list[tuple[float, float]]], list[str]]:
    """(step, similarity) per checkpoint, and the layer destroyed at each step (top first)."""
    out, layers = {}, []
    for role in ("baseline", "suspect"):
        steps = (result.get(role) or {}).get("randomization", {}).get("steps")
        if steps:
            out[role] = [(i, s[key]) for i, s in enumerate(steps)]
            layers = [s["layer"] for s in steps]
    return out, layers


def noise_rows(result: dict) -> list[dict]:
    rows = []
    for role in ("baseline", "suspect"):
        ni = (result.get(role) or {}).get("noise_inputs")
        if ni:
            rows.append(
                {"checkpoint": role, **{k: ni[k] for k in ("pcc_mean", "pcc_std", "ssim_mean", "pairs")}}
            )
    return rows


def finding_rows(result: dict) -> list[dict]:
    report = result.get("report") or {}
    return [
        {
            "test": f["test"],
            "flagged": "yes" if f["flagged"] else "no",
            "baseline": round(f["baseline"], 4),
            "suspect": round(f["suspect"], 4),
            "threshold": round(f["threshold"], 4),
            "rule": f["rule"],
            "verdict": f["verdict"],
        }
        for f in report.get("findings", [])
    ]
