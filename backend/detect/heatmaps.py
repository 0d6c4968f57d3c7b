"""Heatmaps for the detection tests: each method's one map convention, on [0, 1] per image.

The tests compare maps across models and inputs, so each map is put on a common [0, 1] scale; it is the
map a fooling attack optimises and Inspect shows (`backend.explain.normalize.method_map`).
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
    """(B, H, W) maps of `x` (normalised input) for `target`: the method's convention, in [0, 1]."""
    from backend.explain import explain
    from backend.explain.normalize import method_map

    out = []
    for i in range(0, x.shape[0], batch_size):
        t = target[i : i + batch_size] if isinstance(target, torch.Tensor) else target
        ex = explain(model, x[i : i + batch_size], t, method, **params)
        out.append(method_map(ex.heatmap.detach(), ex.native.detach(), method).float())
    return torch.cat(out)


def predictions(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes (B,) without building a graph."""
    with torch.no_grad():
        return torch.cat([model(chunk).argmax(1) for chunk in x.split(batch_size)])
