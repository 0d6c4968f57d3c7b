"""How a model wants its pixels: resize, centre crop, scale to [0, 1], normalise per channel.

Part of every checkpoint card (`to_dict`/`from_dict`), so a checkpoint is always fed the way it was
trained. `normalize`/`denormalize` work on (3,H,W) and (B,3,H,W) tensors alike.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from backend.errors import InvalidConfig
from backend.models.input_range import InputRange

INTERPOLATIONS = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """size: side of the square crop; resize: shorter side before cropping (None = resize to size)."""

    size: int = 224
    resize: int | None = 256
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.interpolation not in INTERPOLATIONS:
            raise InvalidConfig(
                f"Unknown interpolation {self.interpolation!r}; use one of {', '.join(INTERPOLATIONS)}"
            )
        if int(self.size) < 1 or (self.resize is not None and int(self.resize) < self.size):
            raise InvalidConfig(f"Need 1 <= size <= resize, got size={self.size}, resize={self.resize}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise InvalidConfig("mean and std need 3 values each, std > 0")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(3, size, size): one input as the model takes it."""
        return (3, int(self.size), int(self.size))

    @property
    def input_range(self) -> InputRange:
        """Per-channel bounds of the normalised input (pixels in [0, 1] through mean / std)."""
        return InputRange.of_normalisation(self.mean, self.std)

    def resize_crop(self, image: Image.Image) -> Image.Image:
        """The geometric part: shorter side to `resize`, then the centre `size` x `size` crop."""
        image = image.convert("RGB")
        mode = INTERPOLATIONS[self.interpolation]
        if self.resize is None:
            return TF.resize(image, [self.size, self.size], interpolation=mode, antialias=True)
        image = TF.resize(image, self.resize, interpolation=mode, antialias=True)
        return TF.center_crop(image, [self.size, self.size])

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> normalised float32 tensor (3, size, size)."""
        return self.normalize(TF.to_tensor(self.resize_crop(image)))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (3, 1, 1) if x.dim() == 3 else (1, 3, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return mean, std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels -> model input."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Model input -> [0, 1] pixels (not clamped, so the round trip is exact)."""
        mean, std = self._stats(x)
        return x * std + mean

    def to_dict(self) -> dict:
        return {
            "size": int(self.size),
            "resize": None if self.resize is None else int(self.resize),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        unknown = set(data) - {"size", "resize", "mean", "std", "interpolation"}
        if unknown:
            raise InvalidConfig(f"Unknown preprocessing fields: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


# Preprocessing of other inputs than images, by the card's "kind" key (a card without one is an image
# model's): "module:Class" with a `from_dict`, imported only when such a card is read.
PREPROCESSING_KINDS: dict[str, str] = {"tabular": "backend.tabular.preprocessing:TabularPreprocessing"}


def preprocessing_from_dict(data: dict) -> Any:
    """The typed preprocessing a card's dict describes (`Preprocessing` for images); `InvalidConfig`."""
    kind = data.get("kind", "image")
    if kind == "image":
        return Preprocessing.from_dict({k: v for k, v in data.items() if k != "kind"})
    if kind not in PREPROCESSING_KINDS:
        raise InvalidConfig(
            f"Unknown preprocessing kind {kind!r}; known: image, {', '.join(PREPROCESSING_KINDS)}"
        )
    module, _, name = PREPROCESSING_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name).from_dict(data)
