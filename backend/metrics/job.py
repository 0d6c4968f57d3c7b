"""Job kind "evaluate": FSR table, transfer matrix and accuracy table of fooled checkpoints."""

from __future__ import annotations

import json

from backend.jobs.kinds import JobContext, JobKind, register_kind


@register_kind
class EvaluateJob(JobKind):
    name = "evaluate"
    title = "Evaluate fooled models (FSR, transfer, accuracy)"

    def validate(self, config: dict) -> dict:
        from backend.metrics.evaluate import normalize_config
        from backend.models.registry import Registry

        return normalize_config(config, Registry())

    def run(self, config: dict, ctx: JobContext) -> dict:
        from backend.metrics.evaluate import evaluate, format_report

        report = evaluate(config, progress=ctx.progress)
        path = ctx.artifacts_dir / "evaluation.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report))
        ctx.add_artifact("table", format_report(report), label="FSR / accuracy tables")
        ctx.add_artifact("file", str(path), label="full report (JSON)")
        summary = {m: {c: v["fooled"] for c, v in row.items()} for m, row in report["fsr"].items()}
        return {"fsr": summary, "accuracy": {k: v["top1"] for k, v in report["accuracy"].items()}}
