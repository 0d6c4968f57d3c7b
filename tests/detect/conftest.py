"""Fixtures of the detection tests: a small conv net with BatchNorm, one thread per test."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors on a shared 2-core machine: one intra-op thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    ).eval()


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory):
    """The shapes CNN at 32 px (the UI tests' recipe) in its own registry: (root, model, card).

    The full-size session `shapes_model` took over 15 minutes to train on this shared, loaded 2-core
    machine, so the detection tests use this smaller member of the same architecture.
    """
    from tests.ui.helpers import train_tiny_shapes

    root = tmp_path_factory.mktemp("detect-registry")
    model, card = train_tiny_shapes(root)
    return root, model, card


@pytest.fixture(scope="session")
def fooled_tiny(tiny_registry):
    """The tiny shapes CNN fooled by the fooling engine (its gradient maps drawn as a fixed cross)."""
    from backend.fool.presets import resolve_config
    from backend.fool.trainer import run_fooling
    from backend.models.registry import Registry

    root, _, card = tiny_registry
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOOLING_LAB_MODELS", str(root))
        fooled = run_fooling(resolve_config({"preset": "shapes-target_heatmap-gradient", "model": card.id}))
    return Registry(root=root).load(fooled.id, device="cpu")
