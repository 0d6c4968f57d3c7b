"""The range of values a model input can take, per channel: what LRP's z^beta rule needs as bounds.

A checkpoint's preprocessing maps pixels in [0, 1] to `(pixel - mean) / std`, so its inputs lie in
[-mean / std, (1 - mean) / std] channel by channel. `Preprocessing.input_range` computes it, the
checkpoint handle stamps it on the models it loads (`model.input_range`), and LRP reads it there.
No torchvision import here: the explanation engine imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class InputRange:
    """Lowest and highest input value per channel (normalised units)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def of_normalisation(cls, mean: Sequence[float], std: Sequence[float]) -> InputRange:
        """The image of pixels in [0, 1] under `(pixel - mean) / std`."""
        return cls(
            tuple(-float(m) / float(s) for m, s in zip(mean, std, strict=True)),
            tuple((1.0 - float(m)) / float(s) for m, s in zip(mean, std, strict=True)),
        )

    @classmethod
    def unit(cls, channels: int = 3) -> InputRange:
        """Raw pixels in [0, 1] (a model that normalises inside, e.g. the decoys' shifted wrapper)."""
        return cls((0.0,) * channels, (1.0,) * channels)

    def tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) as (1, C, 1, 1) tensors with `like`'s dtype and device."""
        low = torch.tensor(self.low, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
        high = torch.tensor(self.high, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
        return low, high


# ImageNet's normalisation: the range assumed for a bare model that no checkpoint describes.
IMAGENET_RANGE = InputRange.of_normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
