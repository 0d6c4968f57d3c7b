"""Intermediate representation F_l(x) of a model at one layer, computed without running the rest of it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from backend.errors import InvalidConfig

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Softplus, nn.ELU, nn.Hardswish)


class _Captured(Exception):
    """Raised by the hook once the layer ran: the layers above it are not needed for F_l."""


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named modules without children, in registration order (the paper's layer index l counts these)."""
    return [(name, m) for name, m in model.named_modules() if name and not list(m.children())]


def default_decoy_layer(model: nn.Module) -> str:
    """A shallow layer, as in the paper's Table A2 (VGG16 l=3 is its second ReLU): the second activation."""
    leaves = leaf_modules(model)
    acts = [name for name, m in leaves if isinstance(m, _ACTIVATIONS)]
    if acts:
        return acts[1] if len(acts) > 1 else acts[0]
    convs = [name for name, m in leaves if isinstance(m, nn.Conv2d)]
    if convs:
        return convs[0]
    raise InvalidConfig("The model has no convolution or activation layer to build decoys at; name one.")


def resolve_decoy_layer(model: nn.Module, layer: str | int | None) -> tuple[str, nn.Module]:
    """`layer` as a dotted module name, an index into `leaf_modules`, or None for the default."""
    leaves = leaf_modules(model)
    if layer is None:
        layer = default_decoy_layer(model)
    if isinstance(layer, int):
        if not 0 <= layer < len(leaves):
            raise InvalidConfig(
                f"Decoy layer index {layer} is out of range: the model has {len(leaves)} layers."
            )
        return leaves[layer]
    try:
        return layer, model.get_submodule(layer)
    except AttributeError:
        names = ", ".join(name for name, _ in leaves[:12])
        raise InvalidConfig(f"The model has no layer {layer!r}; layers start with: {names} ...") from None


@contextmanager
def layer_output(model: nn.Module, layer: str | int | None) -> Iterator:
    """Yield `f(x) -> F_l(x)`: runs `model` only up to the layer (the hook stops the forward pass)."""
    _, module = resolve_decoy_layer(model, layer)
    store: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        store.append(output)
        raise _Captured

    handle = module.register_forward_hook(hook)

    def features(x: torch.Tensor) -> torch.Tensor:
        store.clear()
        try:
            model(x)
        except _Captured:
            return store[0]
        raise InvalidConfig("The decoy layer is not used in the model's forward pass; choose another layer.")

    try:
        yield features
    finally:
        handle.remove()


def pixel_normalizer(mean: Sequence[float], std: Sequence[float]):
    """Map images in [0, 1] (the decoys' space) to the model's normalised input."""
    m = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        return (x - m.to(x.device)) / s.to(x.device)

    return normalize
