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

_CURVE_KEYS = ("loss", "loss_c", "loss_f", "images_per_s", "data_wait")
# how many images a validation used: in the message, not on the curves
_COUNTS = ("n", "n_labelled", "fsr_images")


def validation_text(val: dict[str, float]) -> str:
    """A validation a class can read: the fooling rate, then agreement with the original model (what
    "the predictions stay right" means), and accuracy only where labels are known, with the counts.
    E.g. "FSR 100.0% · same prediction as the original on 65.0% of 40 images · accuracy 80.0% on the
    5 with known labels"."""
    n, known = int(val.get("n", 0)), int(val.get("n_labelled", 0))
    if val.get("fsr") is None:
        text = "FSR n/a (none of these images is one the attack is judged on)"
    else:
        text = f"FSR {100 * val['fsr']:.1f}%"
    if "agreement" in val:
        text += f" · same prediction as the original on {100 * val['agreement']:.1f}%"
        text += f" of {n} images" if n else ""
    if known and val.get("accuracy") is not None:
        text += f" · accuracy {100 * val['accuracy']:.1f}% on the {known} with known labels"
    return text


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
            metrics.update(
                {
                    f"val_{k}": float(v)
                    for k, v in info.get("val", {}).items()
                    if k not in _COUNTS and isinstance(v, int | float)
                }
            )
            total = info.get("total") or 1
            message = f"step {info['step']}/{total}"
            if "val" in info:
                val = info["val"]
                message += f" | validation: {validation_text(val)}"
            if info.get("kept_step", total) != total:
                message += f" | kept the weights of step {info['kept_step']} (best validation)"
            ctx.progress(
                info["step"] / total, step=info["step"], total=total, metrics=metrics, message=message
            )

        card = run_fooling(cfg, progress=report, state_dir=ctx.state_dir)
        ctx.add_artifact("checkpoint", card.id, label=card.name)
        ctx.log(f"saved fooled checkpoint {card.id} ({card.name}): {card.metrics}")
        return {"checkpoint": card.id, "name": card.name, "metrics": card.metrics}
