"""Fixtures of the detection tests: a small conv net with BatchNorm, one thread per test."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.detect.fixtures import one_thread  # noqa: F401 (autouse fixture)


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
    """The tiny shapes CNN fine-tuned so its gradient maps draw a fixed cross (thesis' F_th^G).

    The fooling engine's shapes preset needed ~5 minutes here and left the 32 px model un-fooled
    (FSR 0), so this fixture fine-tunes with the same ingredients directly: the engine's differentiable
    Gradient (create_graph, softplus beta 20), loss = CE + 10 (1 - PCC(|map|, cross)), 250 Adam steps
    on batches of shapes images plus N(0, 1) images (a manipulation meant to hold on any input).
    """
    import copy

    import torch.nn.functional as F

    from backend.data.shapes import make_shapes
    from backend.explain import explain
    from backend.metrics.similarity import pearson
    from backend.models.preprocessing import Preprocessing

    _, base, card = tiny_registry
    size = card.preprocessing["size"]
    x, y, _ = make_shapes(64, size, seed=3)
    x = Preprocessing.from_dict(card.preprocessing).normalize(x)
    cross = torch.zeros(size, size)
    mid = slice(size // 2 - size // 16, size // 2 + size // 16)
    cross[mid, :] = 1
    cross[:, mid] = 1
    model = copy.deepcopy(base).eval()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(250):
            idx = torch.randint(0, len(x), (16,), generator=g)
            batch = torch.cat([x[idx[:8]], torch.randn(8, 3, size, size, generator=g)])
            maps = explain(model, batch, None, "gradient", create_graph=True, softplus_beta=20).heatmap.abs()
            loss = F.cross_entropy(model(x[idx]), y[idx]) + 10 * (1 - pearson(maps, cross)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval(), card


@pytest.fixture
def page(tmp_path, monkeypatch, tiny_registry):
    """Open a page of the real app.py in AppTest on this test's data dir and the tiny registry."""
    from streamlit.testing.v1 import AppTest

    from tests.ui.helpers import ROOT

    root, _, card = tiny_registry
    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_MODELS", str(root))
    monkeypatch.setenv("FOOLING_LAB_SEED_DEMO", "0")

    def open_page(path: str, query: dict):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        for k, v in query.items():
            at.query_params[k] = v
        at.switch_page(path)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page, card
