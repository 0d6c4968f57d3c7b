"""Options of the shapes-CNN training, checked without importing torch.

Kept apart from `train_shapes` so that the `train` command's parser and the job kind's submit-time
validation (both in light processes: the CLI, the Streamlit page) never pay torch's import time.
"""

from __future__ import annotations

from typing import Any

from backend.devices import MAX_DEVICES, check_split, take_world_size
from backend.errors import InvalidConfig

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "size": 64,
    "n_train": 4000,
    "n_val": 500,
    "epochs": 10,
    "batch_size": 32,
    "lr": 4e-3,
    "name": "shapes CNN",
    # the shapes CNN, or the thesis's CIFAR VGG16 trained on 32 px shapes (the CIFAR-10 images are not on
    # this machine): what the thesis presets run on here
    "architecture": "shapes_cnn",
    "device": None,  # None = the worker's device (settings.device)
    "devices": 1,  # data-parallel processes (backend.devices.HELP); `world_size` is accepted too
}
ARCHITECTURES = ("shapes_cnn", "cifar_vgg16")
LIMITS = {  # also the train form's ranges (backend.services.models.train_fields)
    "size": (32, 256),
    "n_train": (50, 100_000),
    "n_val": (10, 20_000),
    "epochs": (1, 200),
    "batch_size": (1, 1024),
    "devices": (1, MAX_DEVICES),
}
_VAL_SEED_OFFSET = 1_000_003  # held-out images come from a different stream than the training ones


def validate_config(config: dict | None) -> dict:
    """Defaults filled in, types and ranges checked; raises `InvalidConfig` with what to change."""
    config = take_world_size(config or {})
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InvalidConfig(f"Unknown train options: {names}; known: {', '.join(DEFAULTS)}")
    out = {**DEFAULTS, **config}
    try:
        for key in ("seed", *LIMITS):
            out[key] = int(out[key])
        out["lr"] = float(out["lr"])
    except (TypeError, ValueError) as err:
        raise InvalidConfig(f"Train options must be numbers: {err}") from err
    for key, (lo, hi) in LIMITS.items():
        if not lo <= out[key] <= hi:
            raise InvalidConfig(f"{key} must be between {lo} and {hi}, got {out[key]}")
    check_split(out["batch_size"], out["devices"])
    if out["device"] is not None and (not isinstance(out["device"], str) or not out["device"].strip()):
        raise InvalidConfig(f"device must be a torch device such as cpu or cuda, got {out['device']!r}")
    if not 0 < out["lr"] <= 1:
        raise InvalidConfig(f"lr must be in (0, 1], got {out['lr']}")
    if out["architecture"] not in ARCHITECTURES:
        raise InvalidConfig(
            f"architecture must be one of {', '.join(ARCHITECTURES)}, got {out['architecture']!r}"
        )
    if out["architecture"] == "cifar_vgg16" and "name" not in config:
        out["name"] = f"CIFAR VGG16 on {out['size']} px shapes"
    out["name"] = str(out["name"]).strip() or DEFAULTS["name"]
    return out
