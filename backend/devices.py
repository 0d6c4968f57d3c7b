"""`devices` (torch.distributed's `world_size`): how many data-parallel processes a fool, train or
defend job runs over, read without torch so configs, forms and the page process can use it.

`batch_size` is always the global batch (the presets keep the paper's); each process computes
`batch_size / devices` of it, so the split must be even. `backend.distributed` runs the processes;
`backend.jobs.gpus` gives a job that many GPUs.
"""

from __future__ import annotations

from typing import Any

from backend.errors import InvalidConfig

HELP = (
    "data-parallel processes (torch.distributed): batch_size is the global batch, each process takes "
    "batch_size / devices of it; on CUDA one GPU each (the job waits for a worker with that many free), "
    "with device cpu gloo CPU processes"
)


def take_world_size(data: dict[str, Any]) -> dict[str, Any]:
    """A config dict with torch.distributed's `world_size` read as `devices` (a copy)."""
    data = dict(data)
    if "world_size" in data:
        world = data.pop("world_size")
        data.setdefault("devices", world)
    return data


def check_split(batch_size: int, devices: int) -> None:
    """Refuse a global batch that does not split evenly over the processes, with an example that does."""
    devices = int(devices)
    if devices < 1:
        raise InvalidConfig(f"devices must be >= 1, not {devices}.")
    if int(batch_size) % devices != 0:
        example = devices * max(1, int(batch_size) // devices)
        raise InvalidConfig(
            f"batch_size {batch_size} does not split evenly over {devices} devices; make the "
            f"global batch a multiple of {devices} (e.g. {example})."
        )


def batch_text(batch_size: Any, devices: Any) -> str:
    """The global batch and what each process computes, for a form: "Batch 32 in all: 8 per device
    on 4 devices"."""
    try:
        batch, n = int(batch_size or 0), int(devices or 1)
    except (TypeError, ValueError):
        return ""
    if n <= 1:
        return f"Batch {batch} on one device."
    if batch % n:
        return f"Batch {batch} does not split over {n} devices; use a multiple of {n}."
    return f"Batch {batch} in all: {batch // n} per device on {n} devices."
