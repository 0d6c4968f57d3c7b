"""What the detect and decoys jobs share: configs merged over defaults, checkpoints and images loaded."""

from __future__ import annotations

import copy
from typing import Any

import torch

from backend.errors import InvalidConfig


def merged(defaults: dict, config: dict) -> dict:
    """`config` over a deep copy of `defaults`; nested dicts merge, unknown top-level keys are refused."""
    unknown = set(config) - set(defaults)
    if unknown:
        raise InvalidConfig(f"Unknown settings {sorted(unknown)}; known: {sorted(defaults)}.")
    out = copy.deepcopy(defaults)
    for key, value in config.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict) and key != "dataset":
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_method(method: Any) -> str:
    """The explanation method must be registered in the engine."""
    from backend.explain import METHODS

    if method not in METHODS:
        raise InvalidConfig(f"Unknown explanation method {method!r}; choose one of {sorted(METHODS)}.")
    return method


def check_checkpoint(checkpoint_id: Any, role: str) -> str:
    """The checkpoint must exist in the registry (raises `CheckpointNotFound` otherwise)."""
    from backend.models.registry import Registry

    if not isinstance(checkpoint_id, str) or not checkpoint_id:
        raise InvalidConfig(f"Choose a {role} checkpoint (its id from the Models page).")
    Registry().card(checkpoint_id)
    return checkpoint_id


def load_checkpoint(checkpoint_id: str, device: str):
    """(model in eval mode, card, Preprocessing) from the registry."""
    from backend.models.preprocessing import Preprocessing
    from backend.models.registry import Registry

    model, card = Registry().load(checkpoint_id, device=device)
    return model.eval(), card, Preprocessing.from_dict(card.preprocessing)


def load_images(
    spec: dict, preprocessing, limit: int, device: str, classes: list[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `limit` normalised images (N, 3, H, W) and labels (N,) of a dataset spec.

    Labels are indices into `classes` (the checkpoint's card), -1 = unlabelled.
    """
    from backend.data.datasets import build_dataset

    dataset = build_dataset(spec, preprocessing, classes)
    xs, ys = [], []
    for i in range(min(limit, len(dataset))):
        x, y, _ = dataset[i]
        xs.append(x)
        ys.append(int(y))
    if not xs:
        raise InvalidConfig("The dataset holds no images; choose another one.")
    return torch.stack(xs).to(device), torch.tensor(ys, device=device)


def input_shape(preprocessing) -> tuple[int, int, int]:
    """(3, size, size): the input a model with this preprocessing expects."""
    return (3, int(preprocessing.size), int(preprocessing.size))
