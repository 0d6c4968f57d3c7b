"""The one place the defence code opens a checkpoint: the registry's handle (`Checkpoint`: card, typed
preprocessing, input size, model)."""

from __future__ import annotations

from torch import nn

from backend.models.checkpoint import Checkpoint

Loaded = Checkpoint  # what the defence code passes around (the name it has always used)


def open_model(checkpoint_id: str, device, registry=None) -> Checkpoint:
    """The checkpoint's handle on `device`, its model loaded (raises `CheckpointNotFound` and the
    registry's errors). The job's own process: the model is not shared, it may be trained."""
    from backend.models.registry import Registry

    checkpoint = (registry or Registry()).get(checkpoint_id, device=str(device))
    checkpoint.model  # load now, so a broken file fails here  # noqa: B018
    return checkpoint


def frozen(model: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients: a teacher or reference that only answers."""
    return model.eval().requires_grad_(False)
