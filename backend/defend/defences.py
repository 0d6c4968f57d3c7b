"""Every registered defence, by name: importing this module registers them all."""

from __future__ import annotations

from backend.defend import adversarial, alignment, atex, distillation, jacobian  # noqa: F401 (register)
from backend.defend.registry import Defence, registered
from backend.errors import InvalidConfig

DEFENCES: dict[str, Defence] = registered()


def get_defence(name: str) -> Defence:
    if name not in DEFENCES:
        raise InvalidConfig(f"Unknown defence {name!r}; choose one of {', '.join(DEFENCES)}.")
    return DEFENCES[name]
