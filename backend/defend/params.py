"""A defence's settings as plain data: default, limits, choices and help for each parameter.

The registry declares them once; validation, the CLI, the presets and the page's form all read the same
`Param` objects; `Param.field(name)` is the `backend.forms.FieldSpec` a page draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.errors import InvalidConfig


@dataclass(frozen=True)
class Param:
    """One setting: `default` fixes its type (float, int, bool, str, or None for an optional id)."""

    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    label: str = ""

    def field(self, name: str):
        """This setting as a `backend.forms.FieldSpec` (what `pages/_form.py` draws)."""
        from backend.forms import FieldSpec

        if self.choices:
            kind = "choice"
        elif self.default is None or isinstance(self.default, str):
            kind = "text"
        else:
            kind = {bool: "bool", int: "int"}.get(type(self.default), "float")
        return FieldSpec(
            name,
            kind,
            self.default,
            label=self.label,
            help=self.help,
            choices=self.choices,
            min=self.minimum,
            max=self.maximum,
            format="%.4g" if kind == "float" else None,
            optional=self.default is None,
        )

    def check(self, name: str, value: Any) -> Any:
        """The value converted to the default's type, or `InvalidConfig` saying what to change."""
        if self.choices:
            if value not in self.choices:
                raise InvalidConfig(f"{name} must be one of {', '.join(self.choices)}, not {value!r}.")
            return value
        if self.default is None or isinstance(self.default, str):
            if value is not None and not isinstance(value, str):
                raise InvalidConfig(f"{name} must be text (e.g. a checkpoint id), not {value!r}.")
            return value
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise InvalidConfig(f"{name} must be true or false, not {value!r}.")
            return value
        kind = int if isinstance(self.default, int) else float
        try:
            number = kind(value)
        except (TypeError, ValueError) as err:
            raise InvalidConfig(f"{name} must be a number, not {value!r}.") from err
        if kind is int and number != value:
            raise InvalidConfig(f"{name} must be a whole number, not {value!r}.")
        if self.minimum is not None and number < self.minimum:
            raise InvalidConfig(f"{name} must be >= {self.minimum}, not {value!r}.")
        if self.maximum is not None and number > self.maximum:
            raise InvalidConfig(f"{name} must be <= {self.maximum}, not {value!r}.")
        return number


def check_params(owner: str, spec: dict[str, Param], values: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked; unknown names are refused with the known ones."""
    if not isinstance(values, dict):
        raise InvalidConfig(f"{owner}'s parameters must be a JSON object, not {values!r}.")
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise InvalidConfig(f"{owner} has no parameter(s) {unknown}; its parameters: {', '.join(spec)}.")
    return {name: p.check(name, values.get(name, p.default)) for name, p in spec.items()}


def describe(spec: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """The spec as JSON-able dicts (for a form builder, the CLI's `presets` listing, the docs)."""
    return {
        name: {
            "default": p.default,
            "help": p.help,
            "minimum": p.minimum,
            "maximum": p.maximum,
            "choices": list(p.choices),
            "label": p.label or name,
        }
        for name, p in spec.items()
    }
