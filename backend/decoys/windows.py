"""Crop windows for decoy optimisation: a patch can only change F_l inside the layer's receptive field.

For a stack of convolutions, poolings and pointwise layers with receptive field r and total stride j,
F_l(x~) - F_l(x) is zero wherever a unit does not see the patch. Optimising the decoy on a window that
holds the patch plus r pixels on every side (its origin a multiple of j, so the feature grids line up)
gives exactly the same differences on a fraction of the pixels: units that see the patch see only
window pixels, and units cut by the window's edge see no patch pixel, so their (wrong) values agree
for x and x~. Models with any other kind of layer below l (attention, global pooling, linear) get no
window; the caller validates every decoy on the full image anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from backend.decoys.features import _ACTIVATIONS, leaf_modules, resolve_decoy_layer

_POINTWISE = (nn.BatchNorm2d, nn.Identity, nn.Dropout, nn.Dropout2d, *_ACTIVATIONS)
_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
_WORTH_IT = 0.5  # use windows only when they hold at most this share of the image's pixels


def _first(v) -> int:
    return int(max(v)) if isinstance(v, tuple) else int(v)


def receptive_field(model: nn.Module, layer: str | int | None) -> tuple[int, int] | None:
    """(receptive field in pixels, total stride) of the layer's output, or None when unknown.

    Walks the leaf modules in registration order up to the layer: right for plain stacks (VGG, the
    shapes CNN); a parallel branch (a ResNet downsample) only over-estimates both, which stays exact.
    """
    name, _ = resolve_decoy_layer(model, layer)
    leaves = leaf_modules(model)
    inside = [i for i, (n, _) in enumerate(leaves) if n == name or n.startswith(name + ".")]
    if not inside:
        return None
    rf, jump = 1, 1
    for _, m in leaves[: inside[-1] + 1]:
        if isinstance(m, _WINDOWED):
            dilation = _first(getattr(m, "dilation", 1))
            rf += dilation * (_first(m.kernel_size) - 1) * jump
            jump *= _first(m.stride if m.stride is not None else m.kernel_size)
        elif not isinstance(m, _POINTWISE):
            return None
    return rf, jump


@dataclass
class Windows:
    """One window per mask, all of size (h, w), with top-left corners (top[i], left[i])."""

    top: list[int]
    left: list[int]
    h: int
    w: int

    def crop(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The windows `index` of one image `x` (C, H, W): (k, C, h, w)."""
        return torch.stack([self._cut(x, i) for i in index.tolist()])

    def crop_masks(self, masks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Mask `i` (of `masks` (n, H, W)) cut to its own window, for every i in `index`: (k, h, w)."""
        return torch.stack([self._cut(masks[i], i) for i in index.tolist()])

    def _cut(self, t: torch.Tensor, i: int) -> torch.Tensor:
        r, c = self.top[i], self.left[i]
        return t[..., r : r + self.h, c : c + self.w]

    def paste(self, x: torch.Tensor, crops: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Full images (k, C, H, W): x with window `index[i]` replaced by `crops[i]`."""
        full = x[None].repeat(len(index), 1, 1, 1)
        for k, i in enumerate(index.tolist()):
            r, c = self.top[i], self.left[i]
            full[k, :, r : r + self.h, c : c + self.w] = crops[k]
        return full


def plan_windows(masks: torch.Tensor, field: tuple[int, int] | None) -> Windows | None:
    """Windows around every mask (n, H, W) with `field` = (receptive field, stride); None if not worth it."""
    if field is None:
        return None
    rf, jump = field
    height, width = masks.shape[-2:]
    if height % jump or width % jump or not masks.flatten(1).any(1).all():
        return None
    rows, cols = masks.any(2), masks.any(1)
    spans = []
    for along, size in ((rows, height), (cols, width)):
        idx = torch.arange(size, device=masks.device)
        first = torch.where(along, idx, size).amin(1)
        last = torch.where(along, idx, -1).amax(1) + 1
        extent = int((last - first).max()) + 2 * rf
        win = min(size, -(-extent // jump) * jump + jump)
        starts = (first - rf).clamp(0, size - win)
        spans.append(((starts - starts % jump).tolist(), win))
    (top, h), (left, w) = spans
    if h * w > _WORTH_IT * height * width:
        return None
    return Windows(top, left, h, w)
