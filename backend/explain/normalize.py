"""Explicit heatmap normalisers (B, H, W) -> (B, H, W), and each method's one map convention.

The map convention (`METHOD_MAPS`, `method_map`): one normalised map per method, and the same map is
what a fooling attack optimises, what evaluation and detection measure and what Inspect shows by
default. Layer methods (Grad-CAM, LRP_T, Gradient_T) and LRP: clipped at 0, scaled to [0, 1] by the
maximum (Heo et al.). Input-gradient methods (Gradient, Gradient x Input, Integrated Gradients,
SmoothGrad): the sum over colour channels of |g_c|, scaled to [0, 1] by the maximum (the thesis's map,
Pasliev2020 / the fairwashing code, which divide by the sum instead: a per-image constant). The engine's
`Explanation.heatmap` stays the signed channel sum (Inspect's "Signed" view).
"""

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


def abs_channels(native: torch.Tensor) -> torch.Tensor:
    """Sum over channels of |g_c| ((B, C, H, W) -> (B, H, W)), scaled to [0, 1] by each image's max.

    A (B, H, W) map has no channels left: |h| scaled by its max."""
    flat = _per_image(abs_sum(native))
    return (flat / flat.max(1, keepdim=True).values.clamp_min(_TINY)).view(
        native.shape[0], *native.shape[-2:]
    )


def none(h: torch.Tensor) -> torch.Tensor:
    """The engine's map unchanged."""
    return h


# The one registry of named normalisations: what a fooling config's `normalization` names, what
# `method_map` applies, what a form offers.
NORMALIZERS = {
    "clip_minmax": clip_minmax,
    "minmax": minmax,
    "abs_sum": abs_sum,
    "sum_to_one": sum_to_one,
    "abs_channels": abs_channels,
    "none": none,
}
# normalisations that read the method's native per-channel map rather than the channel-summed heatmap
CHANNEL_NORMALIZATIONS = ("abs_channels",)
_CHANNEL_METHODS = ("gradient", "grad_x_input", "integrated_gradients", "smoothgrad")
METHOD_MAPS = {m: "abs_channels" for m in _CHANNEL_METHODS}


def method_normalization(method: str) -> str:
    """The named normalisation of `method`'s map (see the module doc); clip + max-scale by default."""
    return METHOD_MAPS.get(method, "clip_minmax")


def method_map(
    heatmap: torch.Tensor, native: torch.Tensor, method: str, name: str | None = None
) -> torch.Tensor:
    """The map of one explanation under the named normalisation (None = the method's convention).

    `heatmap` (B, H, W) and `native` are an `Explanation`'s; a channel normalisation of a method whose
    native map has no channels at input resolution (Grad-CAM's (B, h, w)) falls back to the heatmap.
    """
    name = name or method_normalization(method)
    if name in CHANNEL_NORMALIZATIONS:
        channels = native.dim() == 4 and native.shape[-2:] == heatmap.shape[-2:]
        return NORMALIZERS[name](native if channels else heatmap)
    return NORMALIZERS[name](heatmap)
