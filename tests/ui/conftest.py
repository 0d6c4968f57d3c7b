"""UI fixtures: a per-test lab (data dir + registry) holding a trained shapes baseline and a copy of it."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.ui.helpers import ROOT, train_tiny_shapes


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory):
    """A small shapes CNN (32 px) trained once per session in its own registry: (model, card)."""
    return train_tiny_shapes(tmp_path_factory.mktemp("ui-registry"))


@pytest.fixture
def lab(tmp_path, monkeypatch, tiny_shapes) -> dict:
    """Fresh data dir and registry; `baseline` is the session's shapes CNN, `fooled` a perturbed child."""
    from backend.models.registry import Registry

    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("FOOLING_LAB_SEED_DEMO", "0")
    model, card = tiny_shapes
    reg = Registry()
    common = dict(architecture=card.architecture, classes=card.classes, preprocessing=card.preprocessing)
    base = reg.save(model, name="shapes-base", kind="trained", **common)
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.2 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    fooled = reg.save(
        other,
        name="shapes-fooled",
        kind="fooled",
        parent=base.id,
        config={"interpreter": "gradcam"},
        **common,
    )
    return {"root": tmp_path, "baseline": base, "fooled": fooled, "registry": reg}


@pytest.fixture
def app_page():
    """Open one page of the real app.py in AppTest: `app_page("pages/inspect.py", query={...})`."""
    from streamlit.testing.v1 import AppTest

    def open_page(path: str, query: dict | None = None, timeout: float = 120):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        at.run()
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.switch_page(path)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page
