"""Job kind `train`: train the shapes CNN in the runner process and publish the checkpoint (over
`devices` data-parallel processes when asked: the worker hands the job that many GPUs)."""

from __future__ import annotations

from backend.jobs.kinds import JobContext, JobKind, register_kind
from backend.models.train_config import validate_config


@register_kind
class TrainKind(JobKind):
    name = "train"
    title = "Train the shapes CNN"

    def validate(self, config: dict) -> dict:
        return validate_config(config)

    def run(self, config: dict, ctx: JobContext) -> dict:
        from backend.models.train_shapes import train_shapes_model  # torch: only in the runner process

        if config.get("device") is None:
            config = {**config, "device": ctx.device}
        ctx.log(f"training the shapes CNN with {config}")
        card = train_shapes_model(config, progress=ctx.progress)
        ctx.add_artifact("checkpoint", card.id, label=card.name)
        ctx.log(f"saved checkpoint {card.id}: val accuracy {card.metrics['val_accuracy']:.3f}")
        return {"checkpoint": card.id, **card.metrics}
