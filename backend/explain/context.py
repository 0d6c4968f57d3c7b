"""Temporary model changes for one explain call, each undone in `finally`: eval mode, softplus, capture."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

SMOOTHABLE = (nn.ReLU, nn.ReLU6)


@contextmanager
def eval_mode(model: nn.Module, keep: bool = False) -> Iterator[None]:
    """Run in eval mode (running BatchNorm statistics, no dropout); restore every module's own flag.

    `keep=True` leaves the modules' flags as they are (a fooling run that trains BatchNorm statistics).
    """
    flags = [(m, m.training) for m in model.modules()]
    if not keep:
        model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


@contextmanager
def softplus(model: nn.Module, beta: float | None) -> Iterator[None]:
    """Swap nn.ReLU / nn.ReLU6 children for Softplus(beta) (smooth second derivatives), then put them back."""
    if beta is None:
        yield
        return
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SMOOTHABLE):
                swapped.append((parent, name, child))
                setattr(parent, name, nn.Softplus(beta=float(beta)))
    try:
        yield
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)


class LayerCapture:
    """Holds the output of one module from the latest forward (the hook only records, never alters)."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None

    def hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"{type(module).__name__} returns {type(output).__name__}, not a tensor")
        self.output = output


@contextmanager
def capture(layer: nn.Module) -> Iterator[LayerCapture]:
    """Record `layer`'s output during the block; the hook is removed afterwards whatever happens."""
    cap = LayerCapture()
    handle = layer.register_forward_hook(cap.hook)
    try:
        yield cap
    finally:
        handle.remove()
