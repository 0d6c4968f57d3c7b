"""DefendConfig: everything one defence run needs, as a dataclass that round-trips through JSON.

`validate()` refuses a config before anything is queued. The defence's own settings live in `params`
and are checked against its registry entry (`backend.defend.params.Param`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from backend.devices import check_split, take_world_size
from backend.errors import CheckpointNotFound, InvalidConfig

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class DefendConfig:
    model: str  # checkpoint id of the model to defend (the parent of the defended one)
    defence: str = "pgd_linf"
    params: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=lambda: {"kind": "shapes", "n": 4096, "seed": 2})
    val_dataset: dict[str, Any] | None = None  # None = a held-out split of `dataset`
    val_fraction: float = 0.1
    val_size: int = 128
    val_every: int = 0  # validate every N steps (0 = only at the end)
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    momentum: float = 0.9
    grad_clip: float | None = 1.0
    batch_size: int = 32
    steps: int = 200
    freeze_batchnorm: bool = True  # BatchNorm keeps its running statistics (eval mode), as fooling does
    seed: int = 0
    checkpoint_every: int = 50
    name: str | None = None
    device: str | None = None
    devices: int = 1  # data-parallel processes (backend.devices.HELP); `world_size` is accepted too
    num_workers: int | None = None  # image-decoding DataLoader workers; None = from the CPU count

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DefendConfig:
        if not isinstance(data, dict):
            raise InvalidConfig("A defence config must be a JSON object (a dict of settings).")
        data = take_world_size(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidConfig(f"Unknown defence setting(s) {unknown}; known: {', '.join(sorted(names))}.")
        if not data.get("model"):
            raise InvalidConfig("The defence config needs model: the id of the checkpoint to defend.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self, registry=None) -> DefendConfig:
        """Check every setting (the defence's params filled with defaults); with a registry also that
        the model (and a reference model) exist. Returns self."""
        from backend.data.datasets import check_specs
        from backend.defend.defences import get_defence

        defence = get_defence(self.defence)
        self.params = defence.check(self.params)
        _check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}.")
        _check(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}.")
        _check(isinstance(self.lr, int | float) and self.lr > 0, f"lr must be > 0, not {self.lr!r}.")
        _check(int(self.batch_size) >= 1, f"batch_size must be >= 1, not {self.batch_size}.")
        _check(int(self.steps) >= 1, f"steps must be >= 1, not {self.steps}.")
        check_split(self.batch_size, self.devices)
        self.devices = int(self.devices)
        _check(0 < self.val_fraction < 1, f"val_fraction must lie in (0, 1), not {self.val_fraction}.")
        _check(int(self.val_size) >= 1, "val_size must be >= 1.")
        _check(int(self.val_every) >= 0, "val_every must be >= 0 (0 = only at the end).")
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0 (or empty for none).")
        _check(int(self.checkpoint_every) >= 1, "checkpoint_every must be >= 1.")
        _check(
            self.num_workers is None or int(self.num_workers) >= 0,
            "num_workers must be >= 0 (0 = decode in the training process), or empty for the CPU count.",
        )
        _check(
            isinstance(self.dataset, dict), "dataset must be a spec such as {'kind': 'shapes', 'n': 4096}."
        )
        check_specs(self.dataset, self.val_dataset)
        if registry is not None:
            for role, cid in (("model", self.model), ("reference", self.params.get("reference"))):
                if cid is None:
                    continue
                try:
                    card = registry.card(cid)
                except CheckpointNotFound as err:
                    raise InvalidConfig(
                        f"Unknown {role} {cid!r}: {err} Pick one on the Models page."
                    ) from err
                if (card.preprocessing or {}).get("kind", "image") != "image":
                    raise InvalidConfig(f"The {role} {cid} is a table model; defences train image models.")
        return self


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidConfig(message)
