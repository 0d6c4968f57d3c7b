"""Saliency fidelity S_F and sensitivity S_S (Decoys §4.2); lower is better for both."""

from __future__ import annotations

import torch
from torch import nn

from backend.decoys.generate import Normalize


def fidelity(
    model: nn.Module, x: torch.Tensor, saliency: torch.Tensor, normalize: Normalize, target: int
) -> float:
    """S_F = -(log F^c(E o x) - log F^c(E_mean o x)) with E the [0, 1] heatmap (H, W) of x (C, H, W).

    Subtracting the mean-saliency term removes the bias of E (E = 1 everywhere scores 0). Lower is better.
    """
    e = saliency.to(x.dtype)
    pair = torch.stack([e[None] * x, e.mean() * x])
    with torch.no_grad():
        logp = torch.log_softmax(model(normalize(pair)), dim=1)[:, target]
    return float(-(logp[0] - logp[1]))


def sensitivity(
    map_x: torch.Tensor, map_perturbed: torch.Tensor, x: torch.Tensor, perturbed: torch.Tensor
) -> float:
    """S_S = ||E(x) - E(x^)||_2 / ||x - x^||_2: how much the map moves per unit of input change."""
    denom = float((x - perturbed).norm())
    if denom == 0:
        return 0.0
    return float((map_x - map_perturbed).norm()) / denom
