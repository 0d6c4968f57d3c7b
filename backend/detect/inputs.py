"""What the detect and decoys jobs share: configs merged over defaults, checkpoints and images loaded."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from backend.errors import InvalidConfig

if TYPE_CHECKING:
    from backend.models.checkpoint import Checkpoint


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


def own_dataset(checkpoint_id: str, spec: dict | None, n: int, seed: int) -> dict:
    """The images to test a checkpoint on: `spec` if it suits the model, else its own kind of data.

    Shapes for a model of the shapes' classes (any architecture, at its input size), the sample photos
    (augmented) for a model whose classes include theirs (ImageNet); never shapes for a model that does
    not know them. Any other model needs a dataset of its own images; refused saying so.
    """
    from backend.data.datasets import label_check
    from backend.data.shapes import SHAPE_CLASSES
    from backend.errors import InvalidDataset
    from backend.models.registry import Registry

    checkpoint = Registry().get(checkpoint_id)
    name, classes = checkpoint.name, checkpoint.classes
    if spec is not None:
        if spec.get("kind") == "shapes" and not label_check(spec, classes)["labelled"]:
            raise InvalidConfig(
                f"{name} classifies {', '.join(classes[:3])}..., not shapes: test it on its own kind of "
                "images (the sample photos for an ImageNet model, or a folder / zip of its images)."
            )
        try:
            label_check(spec, classes)
        except InvalidDataset as err:
            raise InvalidConfig(f"dataset: {err}") from err
        return spec
    if classes == list(SHAPE_CLASSES):
        return {"kind": "shapes", "n": int(n), "size": checkpoint.input_size, "seed": int(seed)}
    if label_check({"kind": "samples"}, classes)["labelled"]:
        return {"kind": "samples", "augment": max(1, -(-int(n) // 5)), "seed": int(seed)}
    raise InvalidConfig(
        f"{name} classifies {', '.join(classes[:3])}...: give a dataset of its own images "
        "(a folder or zip, class folders named after its classes or unlabelled)."
    )


def open_checkpoint(checkpoint_id: str, device: str) -> Checkpoint:
    """The checkpoint handle on `device` (the job's own process: its model is not shared)."""
    from backend.models.registry import Registry

    return Registry().get(checkpoint_id, device=device)


def load_images(
    spec: dict, checkpoint: Checkpoint, limit: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `limit` images (N, 3, H, W) and labels (N,) of a dataset spec, normalised as `checkpoint`
    wants them. Labels are indices into the checkpoint's classes, -1 = unlabelled. Decoded by DataLoader
    worker processes (`backend.data.loader.load_all`; none for in-memory data such as the shapes).
    """
    from backend.data.datasets import build_dataset
    from backend.data.loader import load_all

    dataset = build_dataset(spec, checkpoint.image_preprocessing, checkpoint.classes)
    if len(dataset) == 0 or limit < 1:
        raise InvalidConfig("The dataset holds no images; choose another one.")
    return load_all(dataset, limit, device)
