"""Measurements on table rows shared by training, the attack, the checks and the page.

Importance as the thesis draws it (Pasliev2020 §3.8, Fig. 3.14): each row's |attribution| normalised to sum to
one (as its heatmaps were, §3.4), summed over each one-hot group and averaged over rows. The protected
share of a row is the part of its normalised |attribution| on the protected attributes' columns; the
tabular FSR counts rows whose share lies in `backend.metrics.fsr.RF["protected_share"]`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from backend.explain import explain
from backend.explain.groups import group_attributions
from backend.metrics.fsr import fsr

_EPS = 1e-12


def probabilities(model: nn.Module, x: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(chunk).softmax(1) for chunk in x.split(batch)]) if len(x) else x[:, :0]


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return probabilities(model, x).argmax(1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predictions(model, x) == y).float().mean())


def attributions(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradient",
    params: dict[str, Any] | None = None,
    target: torch.Tensor | None = None,
    batch: int = 4096,
) -> torch.Tensor:
    """(N, F) attributions of the predicted class (or `target`), computed `batch` rows at a time."""
    out = []
    for start in range(0, len(x), batch):
        t = None if target is None else target[start : start + batch]
        ex = explain(model, x[start : start + batch], t, method, **(params or {}))
        out.append(ex.heatmap.detach())
    return torch.cat(out)


def normalised(a: torch.Tensor) -> torch.Tensor:
    """|a| / sum |a| per row (an all-zero row stays zero); differentiable."""
    m = a.abs()
    return m / m.sum(1, keepdim=True).clamp_min(_EPS)


def protected_share(norm: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) share of each normalised row on the protected columns (`mask` (F,) bool)."""
    return (norm * mask.to(norm)).sum(1)


def importance(norm: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """(G,) mean normalised |attribution| per group (sums to 1 over groups): the chart's bars."""
    return group_attributions(norm, groups).mean(0)


def share_fsr(shares: torch.Tensor) -> float:
    return fsr(shares.detach().cpu(), "protected_share")
