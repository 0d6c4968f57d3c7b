"""Job kinds "defend" (train a defence, resumably, publish the checkpoint) and "defend_evaluate"
(measure defended models against their base: see `backend.defend.evaluate`)."""

from __future__ import annotations

from backend.jobs.kinds import JobContext, JobKind, register_kind


@register_kind
class DefendJob(JobKind):
    name = "defend"
    title = "Train a defence (robust training, distillation, gradient regularisation, alignment, ATEX)"

    def validate(self, config: dict) -> dict:
        from backend.defend.config import DefendConfig
        from backend.defend.presets import resolve_config
        from backend.models.registry import Registry

        cfg = DefendConfig.from_dict(resolve_config(config))
        return cfg.validate(Registry()).to_dict()

    def run(self, config: dict, ctx: JobContext) -> dict:
        from backend.defend.config import DefendConfig
        from backend.defend.trainer import run_defence

        cfg = DefendConfig.from_dict(config)
        if cfg.device is None:
            cfg.device = ctx.device

        card = run_defence(cfg, progress=ctx.progress, state_dir=ctx.state_dir)
        ctx.add_artifact("checkpoint", card.id, label=card.name)
        ctx.log(f"saved defended checkpoint {card.id} ({card.name}): {card.metrics}")
        return {"checkpoint": card.id, "name": card.name, "defence": cfg.defence, "metrics": card.metrics}


@register_kind
class DefendEvaluateJob(JobKind):
    name = "defend_evaluate"
    title = "Measure defences: fooling, input attacks, alignment, ROAD / ROAR"

    def validate(self, config: dict) -> dict:
        from backend.defend.evaluate import normalize_config

        return normalize_config(config)

    def run(self, config: dict, ctx: JobContext) -> dict:
        import json

        from backend.defend.evaluate import evaluate_defences, format_result, summary

        result = evaluate_defences(config, progress=ctx.progress)
        path = ctx.artifacts_dir / "defences.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
        ctx.add_artifact("table", format_result(result), label="Defence tables")
        ctx.add_artifact("file", str(path), label="full result (JSON)")
        return summary(result)
