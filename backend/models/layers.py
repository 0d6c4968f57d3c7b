"""Tiny named modules that explanation rules can attach to (a functional `x + y` has no module)."""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """Residual addition as a module, so LRP can give it a rule and hooks can see it."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class SamePad2d(nn.Module):
    """TensorFlow "SAME" padding for a fixed kernel/stride (asymmetric on even inputs).

    The shipped EfficientNet-Lite0 weights were trained in TensorFlow; matching its padding exactly keeps
    the logits faithful. Computed from the input size at call time, so any resolution works.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h = self._total(h)
        pad_w = self._total(w)
        if pad_h == 0 and pad_w == 0:
            return x
        return nn.functional.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))

    def _total(self, size: int) -> int:
        out = -(-size // self.stride)
        return max((out - 1) * self.stride + self.kernel_size - size, 0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
