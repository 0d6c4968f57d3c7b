"""A tiny conv net for the decoy core tests (the shapes model is used where a trained model matters)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from backend.decoys.features import pixel_normalizer
from tests.detect.fixtures import one_thread  # noqa: F401 (autouse fixture)


@pytest.fixture
def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()


@pytest.fixture
def normalize():
    return pixel_normalizer([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])


@pytest.fixture
def image() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 24, 24, generator=g)
