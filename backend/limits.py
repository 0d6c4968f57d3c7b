"""Limits of a config setting, declared where the setting is: dataclass field metadata.

`setting(default, min=1, help=...)` makes a dataclass field whose metadata holds its limits: `min` /
`max` (inclusive unless `min_exclusive` / `max_exclusive`), `integer` (whole numbers only), `choices`
(allowed values; a zero-argument callable for a registry, read when checked), `help` and `label`
(how messages name it). `check_limits(config)` walks the fields and raises `InvalidConfig` naming the
setting and its range; the forms read the same metadata (`backend.forms.fields_of_dataclass` takes
the keys `FieldSpec` shares: min, max, choices, help, label), so a limit is written once. A field
whose default is None may also be None ("not set").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from backend.errors import InvalidConfig

Choices = Sequence[Any] | Callable[[], Sequence[Any]]


@dataclass(frozen=True)
class Limits:
    """One setting's limits, as `setting(...)` stores them in the field's metadata."""

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    integer: bool = False
    choices: Choices | None = None
    help: str = ""
    label: str | None = None

    @classmethod
    def of(cls, f: dataclasses.Field) -> Limits:
        names = {x.name for x in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in f.metadata.items() if k in names})

    @property
    def numeric(self) -> bool:
        return self.integer or self.min is not None or self.max is not None

    def allowed(self) -> tuple[Any, ...] | None:
        """The choices (a registry's current names for a callable), or None."""
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def describe(self) -> str:
        """The range in words: ">= 1", "> 0", "in (0, 1)", "in [0, 1]", "<= 5"."""
        if self.min is not None and self.max is not None:
            left, right = "(" if self.min_exclusive else "[", ")" if self.max_exclusive else "]"
            return f"in {left}{self.min:g}, {self.max:g}{right}"
        if self.min is not None:
            return f"{'>' if self.min_exclusive else '>='} {self.min:g}"
        if self.max is not None:
            return f"{'<' if self.max_exclusive else '<='} {self.max:g}"
        return "a number"

    def problem(self, name: str, value: Any) -> str | None:
        """What is wrong with `value` for setting `name` (a message a person can act on), or None."""
        label = self.label or name
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            names = ", ".join(map(str, allowed))
            if callable(self.choices):  # a registry: the value names something that does not exist
                return f"Unknown {label} {value!r}; choose one of {names}."
            return f"{label} must be one of {names}, not {value!r}."
        if not self.numeric:
            return None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (self.integer and not float(value).is_integer()):
            kind = "a whole number" if self.integer else "a number"
            return f"{label} must be {kind} {self.describe()}, not {value!r}."
        low_ok = self.min is None or (value > self.min if self.min_exclusive else value >= self.min)
        high_ok = self.max is None or (value < self.max if self.max_exclusive else value <= self.max)
        return None if low_ok and high_ok else f"{label} must be {self.describe()}, not {value!r}."


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **limits: Any):
    """A dataclass field with its limits (keyword arguments named as `Limits`' fields) in its metadata."""
    Limits(**limits)  # a misspelt limit fails here, where it is declared
    return dataclasses.field(default=default, default_factory=default_factory, metadata=limits)


def limits_of(cls_or_obj: Any) -> dict[str, Limits]:
    """Every field's limits (a field declared without `setting` has empty `Limits`)."""
    return {f.name: Limits.of(f) for f in dataclasses.fields(cls_or_obj)}


def check_limits(obj: Any) -> None:
    """Raise `InvalidConfig` for the first field of `obj` outside its limits (None passes where the
    field's default is None)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        problem = Limits.of(f).problem(f.name, value)
        if problem:
            raise InvalidConfig(problem)
