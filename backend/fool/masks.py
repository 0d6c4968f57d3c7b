"""Target masks of the Location attack: which pixels the fooled explanation should highlight (1).

Presets (registry `MASKS`, each `size -> (size, size) float tensor`):
- `frame` (default): Heo2019 Remark 1 - 0 in the centre square [H/4, 3H/4) x [W/4, 3W/4), 1 elsewhere.
- `frame_code`: the original code's frame of width size // 7 (1 on the border band, 0 inside).
- `cross`: a centred cross of bar width size // 8 (the thesis' target heatmap).
- `corner_<top_left|top_right|bottom_left|bottom_right>`: 1 on a corner square of side size // 4.
Any other mask: an array (nested list / numpy / tensor) or an image/.npy file, values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.errors import InvalidConfig


def frame_mask(size: int) -> torch.Tensor:
    """Heo2019 Remark 1: 0 on the centre square [size/4, 3size/4), 1 on the frame around it."""
    m = torch.ones(size, size)
    lo, hi = size // 4, (3 * size) // 4
    m[lo:hi, lo:hi] = 0.0
    return m


def frame_code_mask(size: int) -> torch.Tensor:
    """The original code's Location mask: a frame of width size // 7 (at least one pixel)."""
    width = max(1, size // 7)
    m = torch.ones(size, size)
    m[width : size - width, width : size - width] = 0.0
    return m


def corner_mask(size: int, corner: str = "top_left") -> torch.Tensor:
    """1 on a square of side size // 4 in the given corner, 0 elsewhere."""
    side = max(1, size // 4)
    m = torch.zeros(size, size)
    rows = slice(0, side) if corner.startswith("top") else slice(size - side, size)
    cols = slice(0, side) if corner.endswith("left") else slice(size - side, size)
    m[rows, cols] = 1.0
    return m


def cross_mask(size: int) -> torch.Tensor:
    """A centred cross of bar width size // 8: the thesis' target heatmap (Pasliev2020 Fig. 3.8)."""
    width = max(1, size // 8)
    lo = (size - width) // 2
    m = torch.zeros(size, size)
    m[lo : lo + width, :] = 1.0
    m[:, lo : lo + width] = 1.0
    return m


MASKS: dict[str, Callable[[int], torch.Tensor]] = {
    "frame": frame_mask,
    "cross": cross_mask,
    "frame_code": frame_code_mask,
    **{
        f"corner_{c}": (lambda size, c=c: corner_mask(size, c))
        for c in ("top_left", "top_right", "bottom_left", "bottom_right")
    },
}


def load_mask_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InvalidConfig(f"Mask file {path} does not exist; give a .npy file or an image.")
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def resolve_mask(spec: Any, size: int) -> torch.Tensor:
    """A (size, size) float mask in [0, 1] from a preset name, a file path or an array.

    Raises `InvalidConfig` for an unknown preset, a missing file, a wrong shape or values outside
    [0, 1], saying what was expected.
    """
    if isinstance(spec, str) and spec in MASKS:
        return MASKS[spec](size)
    if isinstance(spec, (str, Path)):
        if isinstance(spec, str) and not any(
            spec.endswith(e) for e in (".npy", ".png", ".jpg", ".jpeg", ".bmp")
        ):
            raise InvalidConfig(
                f"Unknown mask {spec!r}; use one of {', '.join(MASKS)} or a .npy/.png file path."
            )
        spec = load_mask_file(Path(spec))
    try:
        mask = torch.as_tensor(np.asarray(spec, dtype=np.float32))
    except (TypeError, ValueError) as err:
        raise InvalidConfig(f"The mask is not a numeric array ({err}).") from err
    if mask.dim() == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if tuple(mask.shape) != (size, size):
        raise InvalidConfig(
            f"The mask is {tuple(mask.shape)} but the model takes {size}x{size} images; "
            f"draw or upload a {size}x{size} mask."
        )
    if not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
        raise InvalidConfig("Mask values must lie in [0, 1] (1 = should be highlighted).")
    return mask
