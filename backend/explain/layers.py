"""Finding the target layer of layer-based methods by its dotted module name."""

from __future__ import annotations

from torch import nn

from backend.errors import InvalidConfig


def resolve_layer(model: nn.Module, layer: str | None) -> nn.Module:
    """The module named `layer` (e.g. "features.35"), or the model's `default_target_layer` when None."""
    name = layer if layer is not None else getattr(model, "default_target_layer", None)
    if not name:
        raise InvalidConfig(
            "this model names no default target layer; pass layer=<dotted module name>, e.g. "
            f"one of: {', '.join(layer_names(model)[-5:])}"
        )
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise InvalidConfig(
            f"the model has no layer {name!r}; the last layers are: {', '.join(layer_names(model)[-8:])}"
        ) from None


def layer_names(model: nn.Module) -> list[str]:
    """Dotted names of all submodules in registration order (for choosers and error messages)."""
    return [name for name, _ in model.named_modules() if name]
