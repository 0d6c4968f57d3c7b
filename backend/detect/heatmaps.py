"""Heatmaps for the detection tests: the engine's map, |.|, min-max scaled per image (a named step).

The tests compare maps across models and inputs, so each map is put on a common [0, 1] scale first.
"""

from __future__ import annotations

import torch
from torch import nn


def scaled_heatmaps(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor | int | None,
    method: str,
    batch_size: int = 64,
    **params,
) -> torch.Tensor:
    """(B, H, W) heatmaps of `x` (normalised input) for `target`, |.| then min-max to [0, 1] per image."""
    from backend.explain import explain

    out = []
    for i in range(0, x.shape[0], batch_size):
        t = target[i : i + batch_size] if isinstance(target, torch.Tensor) else target
        h = explain(model, x[i : i + batch_size], t, method, **params).heatmap.detach().abs().float()
        lo = h.flatten(1).min(1).values.view(-1, 1, 1)
        hi = h.flatten(1).max(1).values.view(-1, 1, 1)
        out.append(torch.where(hi > lo, (h - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(h)))
    return torch.cat(out)


def predictions(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes (B,) without building a graph."""
    with torch.no_grad():
        return torch.cat([model(chunk).argmax(1) for chunk in x.split(batch_size)])
