"""Job kinds of the tabular area: `tabular_train`, `tabular_fool` and `tabular_report`.

Configs are validated in the submitting process without torch (`backend.tabular.config`); the work runs
in the job's runner process. Train and fool publish their checkpoint as an artifact; the report returns
its whole result (the page draws the report card and the charts from it).
"""

from __future__ import annotations

from backend.jobs.kinds import JobContext, JobKind, register_kind
from backend.tabular.config import validate_fool, validate_report, validate_train


@register_kind
class TabularTrainJob(JobKind):
    name = "tabular_train"
    title = "Train an MLP on a table"

    def validate(self, config: dict) -> dict:
        return validate_train(config)

    def run(self, config: dict, ctx: JobContext) -> dict:
        from backend.tabular.train import train_tabular

        card = train_tabular(config, progress=ctx.progress, device=ctx.device)
        ctx.add_artifact("checkpoint", card.id, label=card.name)
        ctx.log(f"saved {card.id}: test accuracy {card.metrics['test_accuracy']:.4f}")
        return {"checkpoint": card.id, "name": card.name, **card.metrics}


@register_kind
class TabularFoolJob(JobKind):
    name = "tabular_fool"
    title = "Hide the protected attributes from a table model's explanations"

    def validate(self, config: dict) -> dict:
        from backend.models.registry import Registry
        from backend.tabular.checkpoint import preprocessing_of

        cfg = validate_fool(config)
        preprocessing_of(Registry().card(cfg["model"]))  # an image checkpoint is refused at submit time
        return cfg

    def run(self, config: dict, ctx: JobContext) -> dict:
        from backend.tabular.attack import run_tabular_fooling

        card = run_tabular_fooling(config, progress=ctx.progress, device=ctx.device)
        ctx.add_artifact("checkpoint", card.id, label=card.name)
        ctx.log(f"saved fooled checkpoint {card.id}: {card.metrics}")
        return {"checkpoint": card.id, "name": card.name, **card.metrics}


@register_kind
class TabularReportJob(JobKind):
    name = "tabular_report"
    title = "Report card of a table model: chart vs behaviour"

    def validate(self, config: dict) -> dict:
        from backend.models.registry import Registry
        from backend.tabular.checkpoint import preprocessing_of

        cfg = validate_report(config)
        registry = Registry()
        for key in ("suspect", "baseline", "without"):
            if cfg[key]:
                preprocessing_of(registry.card(cfg[key]))
        return cfg

    def run(self, config: dict, ctx: JobContext) -> dict:
        from backend.tabular.report import run_report

        result = run_report(config, progress=ctx.progress, device=ctx.device)
        ctx.log(result["report"]["headline"])
        ctx.log(result["report"]["summary"])
        return result
