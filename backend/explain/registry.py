"""The method registry: one `MethodSpec` per explanation method; the UI builds its widgets from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.errors import InvalidConfig, UnknownMethod
from backend.forms import FieldSpec, infer_fields


@dataclass(frozen=True)
class MethodSpec:
    """What a method is and can do (captum-style capability flags instead of special cases).

    `differentiable`: the heatmap may sit inside a training loss (`create_graph=True`).
    `layer_based`: it reads a target layer (Grad-CAM, Gradient_T, LRP_T) and has a native (B, h, w) map.
    `params`: the method's keyword parameters with their defaults (the UI's widgets).
    `choices`: allowed values for parameters that are a choice (e.g. LRP composites).
    `inputs`: the input kinds it explains: "image" batches (B, C, H, W) and/or "tabular" rows (B, F).
    `form`: per parameter, how a form shows it (label, help, min/max, kind for a None default); the
    kind otherwise follows the default's type (see `fields`).
    """

    name: str
    label: str
    differentiable: bool
    layer_based: bool
    params: dict[str, Any]
    cost: str
    description: str = ""
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    inputs: tuple[str, ...] = ("image",)
    form: dict[str, dict[str, Any]] = field(default_factory=dict)
    compute: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def fields(self, *, layer: bool = True) -> list[FieldSpec]:
        """The parameters as form fields (a page draws them); with `layer`, a layer-based method's
        target layer comes first (None = the model's default, the papers' layer)."""
        out = infer_fields(self.params, self.choices, self.form)
        if layer and self.layer_based:
            help_ = "The layer whose activations / relevance the map is read at."
            out.insert(0, FieldSpec("layer", "layer", None, label="Target layer", help=help_))
        return out

    def resolve_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with `given`; unknown names and values outside `choices` are refused."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise InvalidConfig(
                f"{self.label} has no parameter {', '.join(unknown)}; "
                f"it takes: {', '.join(self.params) or 'no parameters'}"
            )
        params = {**self.params, **given}
        for key, allowed in self.choices.items():
            if params[key] not in allowed:
                raise InvalidConfig(f"{self.label}: {key}={params[key]!r} is not one of {list(allowed)}")
        return params


METHODS: dict[str, MethodSpec] = {}


def method_field(
    name: str = "method", default: str = "gradient", *, label: str = "Explanation method"
) -> FieldSpec:
    """A form field choosing one registered method (its label shown), for forms that run any of them."""
    return FieldSpec(
        name,
        "choice",
        default,
        label=label,
        choices=tuple(METHODS),
        labels={n: m.label for n, m in METHODS.items()},
    )


def register_method(spec: MethodSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: attach `compute(call) -> (native, heatmap)` to `spec` and register it by name."""

    def wrap(compute: Callable[..., Any]) -> Callable[..., Any]:
        if spec.name in METHODS:
            raise ValueError(f"explanation method {spec.name!r} registered twice")
        METHODS[spec.name] = MethodSpec(**{**spec.__dict__, "compute": compute})
        return compute

    return wrap


def get_method(name: str) -> MethodSpec:
    """The registered spec for `name`, or `UnknownMethod` listing the valid names."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethod(
            f"unknown explanation method {name!r}; choose one of: {', '.join(sorted(METHODS))}"
        ) from None
