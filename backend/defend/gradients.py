"""Input gradients through the explanation engine: the saliency a defence regularises or aligns.

`explain(..., "gradient")` gives d logit_y / d x for the normalised input (its `native` (B, C, H, W)
map) and, with `create_graph=True`, stays differentiable in the weights, so a defence can train on it.
Defences and measurements use it in [0, 1] pixel units (divided by the preprocessing's std), the units
of Zeng2021's images and of every epsilon here, so numbers do not depend on a model's normalisation.
"""

from __future__ import annotations

import torch
from torch import nn


def pixel_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, preprocessing, *, create_graph: bool
) -> torch.Tensor:
    """d logit_y / d pixels, (B, C, H, W), for the normalised batch `x`."""
    from backend.explain import explain

    native = explain(model, x, y, "gradient", create_graph=create_graph).native
    std = torch.tensor(preprocessing.std, dtype=native.dtype, device=native.device).view(1, -1, 1, 1)
    return native / std


def gradient_norm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, preprocessing, batch_size: int = 64
) -> float:
    """Mean l2 norm of the label logit's pixel gradient over the batch (the Jacobian defence's target)."""
    norms = [
        pixel_gradient(model, x[i : i + batch_size], y[i : i + batch_size], preprocessing, create_graph=False)
        .flatten(1)
        .norm(dim=1)
        for i in range(0, len(x), batch_size)
    ]
    return float(torch.cat(norms).mean()) if norms else float("nan")
