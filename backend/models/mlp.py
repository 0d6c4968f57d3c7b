"""A multilayer perceptron for tabular rows (Pasliev2020 §3.8: two hidden layers of 100, ReLU).

Input: the standardised / one-hot row (B, F) that `backend.tabular.preprocessing` builds; output: class
logits (B, K). `activation="softplus"` (with `beta`) gives smooth second derivatives everywhere; with
ReLU modules the explanation engine can still swap in Softplus for one call (`softplus_beta`), as for
the image models. The last hidden activation is the nominal target layer (no layer-based method
explains a table, but every zoo model names one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from backend.errors import InvalidConfig

ACTIVATIONS = ("relu", "softplus")


class TabularMLP(nn.Module):
    def __init__(
        self,
        num_classes: int = 2,
        in_features: int = 12,
        hidden: Sequence[int] = (100, 100),
        activation: str = "relu",
        beta: float = 20.0,
    ) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if int(in_features) < 1 or not hidden or min(hidden) < 1 or num_classes < 2:
            raise InvalidConfig(
                f"an MLP needs in_features >= 1, hidden sizes >= 1 and >= 2 classes "
                f"(got {in_features}, {hidden}, {num_classes})"
            )
        if activation not in ACTIVATIONS:
            raise InvalidConfig(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
        layers: list[nn.Module] = []
        width = int(in_features)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU() if activation == "relu" else nn.Softplus(beta=beta)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.in_features = int(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
