"""Explicit heatmap normalisers (B, H, W) -> (B, H, W); which one a loss or a view uses is its choice."""

from __future__ import annotations

import torch

_TINY = 1e-12


def _per_image(h: torch.Tensor) -> torch.Tensor:
    return h.flatten(1)


def abs_sum(h: torch.Tensor) -> torch.Tensor:
    """|h| (for signed maps of (B, C, H, W) sum |h| over channels first), as the fairwashing code does."""
    return h.abs().sum(1) if h.dim() == 4 else h.abs()


def minmax(h: torch.Tensor) -> torch.Tensor:
    """Scale every image's map to [0, 1] (a constant map becomes 0)."""
    flat = _per_image(h)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(_TINY)).view_as(h)


def clip_minmax(h: torch.Tensor) -> torch.Tensor:
    """Clip at 0, then scale to [0, 1] by the maximum: the papers' step for LRP_T and Grad-CAM maps."""
    flat = _per_image(h).clamp_min(0)
    return (flat / flat.max(1, keepdim=True).values.clamp_min(_TINY)).view_as(h)


def sum_to_one(h: torch.Tensor) -> torch.Tensor:
    """|h| divided by its per-image sum (the fairwashing code's normalisation)."""
    flat = _per_image(h).abs()
    return (flat / flat.sum(1, keepdim=True).clamp_min(_TINY)).view_as(h)


NORMALIZERS = {"abs": abs_sum, "minmax": minmax, "clip_minmax": clip_minmax, "sum_to_one": sum_to_one}
