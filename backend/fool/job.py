"""Job kind "fool": validate a FoolConfig (or a preset), run it resumably, publish the checkpoint.

Config: a FoolConfig dict, optionally `{"preset": NAME, ...overrides}`. The trainer's step infos,
as `backend.progress.Progress` (`trainer.step_report`), carry the loss terms and validation numbers
as metrics, so the UI can plot live curves; a retried job resumes from `ctx.state_dir`.
"""

from __future__ import annotations

from backend.fool.config import FoolConfig
from backend.fool.presets import resolve_config
from backend.jobs.kinds import JobContext, JobKind, register_kind


@register_kind
class FoolJob(JobKind):
    name = "fool"
    title = "Fool a model's explanations"

    def validate(self, config: dict) -> dict:
        from backend.models.registry import Registry

        cfg = FoolConfig.from_dict(resolve_config(config))
        cfg.validate(Registry())
        return cfg.to_dict()

    def run(self, config: dict, ctx: JobContext) -> dict:
        from backend.fool.trainer import run_fooling

        cfg = FoolConfig.from_dict(config)
        if cfg.device is None:
            cfg.device = ctx.device

        card = run_fooling(cfg, progress=ctx.progress, state_dir=ctx.state_dir)
        ctx.add_artifact("checkpoint", card.id, label=card.name)
        ctx.log(f"saved fooled checkpoint {card.id} ({card.name}): {card.metrics}")
        return {"checkpoint": card.id, "name": card.name, "metrics": card.metrics}
