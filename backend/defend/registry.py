"""The defence registry: each defence is a class with its settings (`params`) and a training `loss`.

Like the fooling attacks, a defence only says what one training step minimises; the trainer
(`backend.defend.trainer`) owns the loop, resume, progress and the card. `DEFENCES` (in
`backend.defend.defences`) holds every registered one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from backend.defend.params import Param, check_params
from backend.errors import InvalidConfig


@dataclass
class DefenceContext:
    """What a defence's loss may use besides the batch: the input transform (PGD works in pixels), the
    frozen model before the defence (`parent`), an optional frozen `reference` model (alignment's robust
    model), the checked parameters, where the run is, and a store the trainer saves for resuming."""

    preprocessing: Any
    parent: nn.Module
    params: dict[str, Any]
    reference: nn.Module | None = None
    step: int = 0  # the step being taken (0-based) and the run's total: for defences with phases
    total: int = 1
    store: dict[str, Any] = field(default_factory=dict)  # defence-owned weights (keys without a "_"),
    # saved with the resumable state (distillation keeps its teacher here)


@dataclass
class DefenceLoss:
    loss: torch.Tensor
    terms: dict[str, float] = field(default_factory=dict)  # named parts, for the live curves


class Defence:
    """Base class: subclasses set the class attributes and implement `loss`."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    source: ClassVar[str] = ""  # the paper (short name, docs/REFERENCES.md) it follows
    description: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}
    needs_reference: ClassVar[bool] = False  # a `reference` checkpoint id among the params

    def check(self, values: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in and every value checked (`InvalidConfig` says what to change)."""
        checked = check_params(self.label or self.name, self.params, values)
        if self.needs_reference and not checked.get("reference"):
            raise InvalidConfig(
                f"{self.label} needs a reference checkpoint (params.reference): train a PGD-l2 defence "
                "of the same model first and give its id."
            )
        return checked

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: DefenceContext) -> DefenceLoss:
        raise NotImplementedError


_REGISTERED: dict[str, Defence] = {}


def register_defence(cls: type[Defence]) -> type[Defence]:
    if not cls.name or cls.name in _REGISTERED:
        raise ValueError(f"{cls.__name__}: a defence needs a unique name, got {cls.name!r}")
    _REGISTERED[cls.name] = cls()
    return cls


def registered() -> dict[str, Defence]:
    return _REGISTERED
