"""Job kind "fool": validate a FoolConfig (or a preset), run it resumably, publish the checkpoint.

Config: a FoolConfig dict, optionally `{"preset": NAME, ...overrides}`. Progress reports carry the
loss terms (and validation numbers) as metrics, so the UI can plot live curves; a retried job resumes
from `ctx.state_dir`.
"""

from __future__ import annotations

from typing import Any

from backend.fool.config import FoolConfig
from backend.fool.presets import resolve_config
from backend.jobs.kinds import JobContext, JobKind, register_kind

_CURVE_KEYS = ("loss", "loss_c", "loss_f", "images_per_s")


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

        def report(info: dict[str, Any]) -> None:
            metrics = {k: float(info[k]) for k in _CURVE_KEYS if k in info}
            metrics.update({f"val_{k}": float(v) for k, v in info.get("val", {}).items()})
            total = info.get("total") or 1
            message = f"step {info['step']}/{total}"
            if "val" in info:
                val = info["val"]
                message += f" | val FSR {100 * val['fsr']:.1f}% accuracy {100 * val['accuracy']:.1f}%"
            if info.get("kept_step", total) != total:
                message += f" | kept the weights of step {info['kept_step']} (best validation)"
            ctx.progress(
                info["step"] / total, step=info["step"], total=total, metrics=metrics, message=message
            )

        card = run_fooling(cfg, progress=report, state_dir=ctx.state_dir)
        ctx.add_artifact("checkpoint", card.id, label=card.name)
        ctx.log(f"saved fooled checkpoint {card.id} ({card.name}): {card.metrics}")
        return {"checkpoint": card.id, "name": card.name, "metrics": card.metrics}
