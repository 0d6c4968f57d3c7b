"""`devices` (torch.distributed's `world_size`): how many data-parallel processes a fool, train or
defend job runs over, read without torch so configs, forms and the page process can use it.

`batch_size` is always the global batch (the presets keep the paper's); each process computes
`batch_size / devices` of it, so the split must be even. `backend.distributed` runs the processes;
`backend.jobs.gpus` gives a job that many GPUs.
"""

from __future__ import annotations

from typing import Any

from backend.errors import InvalidConfig
from backend.forms import FieldSpec

MAX_DEVICES = 64
LABEL = "Devices (data-parallel processes)"
FORM_HELP = (
    "torch.distributed over this many GPUs (the job waits for a worker with that many free), or CPU "
    "processes with device cpu; the batch size is the global batch, split evenly: each device computes "
    "batch / devices."
)
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
    if isinstance(devices, bool) or not isinstance(devices, int | float) or int(devices) != devices:
        raise InvalidConfig(f"devices must be a whole number of processes, not {devices!r}.")
    devices = int(devices)
    if not 1 <= devices <= MAX_DEVICES:
        raise InvalidConfig(f"devices must be between 1 and {MAX_DEVICES}, not {devices}.")
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


def run_fields(batch_size: int = 32, max_batch: int = 4096) -> list[FieldSpec]:
    """The form fields of a run that may go data-parallel: the global batch (up to the job's own
    limit), devices, device (the train and defend forms; the fool form derives the same from
    FoolConfig with this wording)."""
    return [
        FieldSpec("batch_size", "int", batch_size, label="Batch size (global)", min=1, max=max_batch),
        FieldSpec("devices", "int", 1, label=LABEL, help=FORM_HELP, min=1, max=MAX_DEVICES),
        FieldSpec(
            "device",
            "text",
            None,
            label="Device",
            help="Empty = the worker's device; cpu runs the processes on the CPU (gloo).",
            optional=True,
        ),
    ]
