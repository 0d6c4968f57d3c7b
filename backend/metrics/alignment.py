"""The alignment of an image with its saliency map, |<x, g>| / ||g|| (Etmann et al. 2019; Zeng2021
Figure 4): how far the input lies along its own gradient. A bound on the distance to the decision
boundary grows with it, and robust (PGD-trained) models have maps that look more like the image."""

from __future__ import annotations

import torch


def alignment(x01: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Per image (B,): |<x, g>| / ||g|| for pixels x01 and gradients g of the same shape."""
    x, g = x01.flatten(1).double(), grad.flatten(1).double()
    return ((x * g).sum(1).abs() / g.norm(dim=1).clamp_min(1e-12)).float()
