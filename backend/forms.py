"""Form fields that registries declare, so pages build their forms from metadata (LIT's way).

An attack, an explanation method, a detection test or a defence lists its settings as `FieldSpec`s
(name, kind, default, choices, limits, help, whether it is advanced). A page renders them with one
generic renderer and reads the values back through `FieldSpec.coerce`; adding an attack or a method
therefore changes no page. Kinds:

- `int`, `float`, `bool`, `text`: plain values (`optional` allows None = "empty").
- `choice`: one of `choices` (`labels` maps a value to what a person reads).
- `layer`: a dotted module name of the checkpoint (None = the model's default target layer).
- `class`: a class index of the checkpoint (its names are the labels).
- `point`: `[row, col]` as fractions of the image.
- `mask`: a map the user picks, draws or uploads (a preset name or a path to an .npy / image).
- `json`: a JSON object (e.g. a dataset spec), None when empty.
- `list`: a comma-separated list of numbers (whole numbers when the default's are).
- `names`: a comma-separated list of words (None when empty and `optional`).
- `multi`: several of `choices`.

This module knows nothing of Streamlit; `pages/_form.py` draws these.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.errors import InvalidConfig

FIELD_KINDS = (
    "int",
    "float",
    "bool",
    "choice",
    "text",
    "layer",
    "class",
    "point",
    "mask",
    "json",
    "list",
    "names",
    "multi",
)


@dataclass(frozen=True)
class FieldSpec:
    """One setting a form shows: what it is, its default and what values it accepts."""

    name: str
    kind: str
    default: Any = None
    label: str = ""
    help: str = ""
    choices: tuple[Any, ...] = ()
    labels: Mapping[Any, str] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    step: float | None = None
    format: str | None = None  # printf-style number format, e.g. "%.2e" for learning rates
    optional: bool = False  # None is a value ("empty": the engine decides)
    advanced: bool = False  # shown under "Advanced"

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"field {self.name!r}: unknown kind {self.kind!r} (one of {FIELD_KINDS})")
        if self.kind in ("choice", "multi") and not self.choices:
            raise ValueError(f"choice field {self.name!r} declares no choices")

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def label_of(self, value: Any) -> str:
        """What a person reads for one value of this field."""
        if value is None:
            return "(default)" if self.kind in ("layer", "choice") else "(empty)"
        return str(self.labels.get(value, value))

    def coerce(self, value: Any) -> Any:
        """`value` as this field's type, inside its limits; `InvalidConfig` names the field otherwise."""
        empty = value is None or (isinstance(value, str) and not value.strip())
        if empty and (self.optional or self.kind in ("layer", "mask", "json")):
            return None
        if empty and self.kind != "text":
            raise InvalidConfig(f"{self.title} needs a value.")
        try:
            out = _CONVERT[self.kind](self, value)
        except (TypeError, ValueError) as err:
            if self.kind == "list":
                raise InvalidConfig(
                    f"{self.title} must be numbers separated by commas, e.g. 0, 0.01, 0.02 (not {value!r})."
                ) from None
            raise InvalidConfig(f"{self.title}: {value!r} is not a valid {self.kind} ({err}).") from None
        if self.choices and self.kind in ("choice", "class") and out not in self.choices:
            shown = ", ".join(self.label_of(c) for c in self.choices)
            raise InvalidConfig(f"{self.title}: {value!r} is not one of {shown}.")
        if self.kind == "multi" and any(v not in self.choices for v in out):
            shown = ", ".join(self.label_of(c) for c in self.choices)
            raise InvalidConfig(f"{self.title}: choose among {shown} (got {out}).")
        for number in _numbers(out) if self.kind in ("int", "float", "list") else ():
            if self.min is not None and number < self.min:
                raise InvalidConfig(f"{self.title} must be >= {self.min}, not {number}.")
            if self.max is not None and number > self.max:
                raise InvalidConfig(f"{self.title} must be <= {self.max}, not {number}.")
        return out


def _numbers(value: Any) -> Iterable[float]:
    if value is None:
        return ()
    return value if isinstance(value, list) else (value,)


def _to_int(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("a whole number is needed")
    return int(value)


def _to_float(spec: FieldSpec, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a number is needed")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError("not finite")
    return out


def _to_bool(spec: FieldSpec, value: Any) -> bool:
    if isinstance(value, str):
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("yes or no")
    return bool(value)


def _to_point(spec: FieldSpec, value: Any) -> list[float]:
    row, col = (float(v) for v in value)
    return [row, col]


def _to_json(spec: FieldSpec, value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _to_list(spec: FieldSpec, value: Any) -> list[float]:
    if isinstance(value, str):
        value = [p for p in value.replace(";", ",").split(",") if p.strip()]
    whole = bool(spec.default) and all(isinstance(v, int) for v in spec.default)
    numbers = [_to_float(spec, v) for v in value]
    if whole:
        return [_to_int(spec, v) for v in numbers]
    return numbers


def _to_names(spec: FieldSpec, value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    names = [str(v).strip() for v in value if str(v).strip()]
    return names or (None if spec.optional else [])


_CONVERT = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "choice": lambda spec, v: v,
    "text": lambda spec, v: str(v),
    "layer": lambda spec, v: str(v),
    "class": _to_int,
    "point": _to_point,
    "mask": lambda spec, v: v,
    "json": _to_json,
    "list": _to_list,
    "names": _to_names,
    "multi": lambda spec, v: list(v),
}


def infer_fields(
    params: Mapping[str, Any],
    choices: Mapping[str, Sequence[Any]] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[FieldSpec]:
    """Fields for a plain dict of defaults (e.g. `MethodSpec.params`): the kind follows the default's
    type (a name in `choices` is a choice; a None default is an optional number), `overrides` adds
    labels, limits and help per name."""
    choices = choices or {}
    overrides = overrides or {}
    out = []
    for name, default in params.items():
        extra = dict(overrides.get(name, {}))
        if name in choices:
            kind = "choice"
            extra.setdefault("choices", tuple(choices[name]))
        elif isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, int):
            kind = "int"
        elif isinstance(default, float):
            kind = "float"
        elif default is None:
            kind = extra.pop("kind", "float")
            extra.setdefault("optional", True)
        elif isinstance(default, str):
            kind = "text"
        elif isinstance(default, (list, dict)):
            kind = "json"
        else:
            raise ValueError(f"cannot infer a form field for {name}={default!r}")
        kind = extra.pop("kind", kind)
        out.append(FieldSpec(name=name, kind=kind, default=default, **extra))
    return out


def fields_of_dataclass(
    cls: type, overrides: Mapping[str, Mapping[str, Any]], skip: Iterable[str] = ()
) -> list[FieldSpec]:
    """One `FieldSpec` per dataclass field: limits, choices and help from the field's `metadata`
    (keys named as FieldSpec's), then `overrides` (the form's own wording and grouping)."""
    known = {f.name for f in dataclasses.fields(FieldSpec)}
    out = []
    for f in dataclasses.fields(cls):
        if f.name in set(skip):
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        spec = {k: v for k, v in f.metadata.items() if k in known}
        spec.update(overrides.get(f.name, {}))
        if "choices" in spec:  # a callable is a registry's names (backend.limits), read now
            choices = spec["choices"]
            spec["choices"] = tuple(choices() if callable(choices) else choices)
        spec.setdefault("kind", "choice" if spec.get("choices") else _kind_of(default))
        out.append(FieldSpec(name=f.name, default=default, **spec))
    return out


def _kind_of(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, (dict, list)) or default is None:
        return "json"
    return "text"


@dataclass(frozen=True)
class FormContext:
    """What a form's checkpoint-dependent fields choose from (`class`, `layer`) and the image side."""

    classes: list[str]
    layers: list[str] = field(default_factory=list)
    default_layer: str | None = None
    size: int = 0
    architecture: str = ""
    name: str = ""


def defaults(fields: Iterable[FieldSpec]) -> dict[str, Any]:
    return {f.name: f.default for f in fields}


def coerce_all(fields: Iterable[FieldSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every field's value from `values` (missing = its default), coerced and checked."""
    return {f.name: f.coerce(values.get(f.name, f.default)) for f in fields}
