"""The one place the defence code loads a checkpoint: model, card and its typed preprocessing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass
class Loaded:
    model: nn.Module
    card: Any
    preprocessing: Any  # backend.models.preprocessing.Preprocessing


def open_model(checkpoint_id: str, device, registry=None) -> Loaded:
    """The checkpoint in eval mode on `device` (raises `CheckpointNotFound` and the registry's errors)."""
    from backend.models.preprocessing import Preprocessing
    from backend.models.registry import Registry

    model, card = (registry or Registry()).load(checkpoint_id, device=device)
    return Loaded(model.eval(), card, Preprocessing.from_dict(card.preprocessing))


def frozen(model: nn.Module) -> nn.Module:
    """Eval mode, no parameter gradients: a teacher or reference that only answers."""
    return model.eval().requires_grad_(False)
