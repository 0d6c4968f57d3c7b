"""Shared fixtures: every test session runs against its own data dir and registry, on the CPU."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="fooling-lab-tests-"))
os.environ.setdefault("FOOLING_LAB_DATA", str(_SESSION_ROOT / "data"))
os.environ.setdefault("FOOLING_LAB_MODELS", str(_SESSION_ROOT / "models"))
os.environ["FOOLING_LAB_DEVICE"] = "cpu"
os.environ.pop("FOOLING_LAB_QUEUE_URL", None)

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def isolated_lab(tmp_path, monkeypatch) -> Path:
    """A fresh data dir and registry for one test (jobs, cache, uploads, checkpoints)."""
    monkeypatch.setenv("FOOLING_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FOOLING_LAB_MODELS", str(tmp_path / "models"))
    return tmp_path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots and reports for a person to look at (git-ignored)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def shapes_model():
    """The small shapes CNN, trained once per session in the session registry: (model, card)."""
    from backend.models.registry import Registry
    from backend.models.train_shapes import train_shapes_model

    card = train_shapes_model({"seed": 0})
    model, card = Registry().load(card.id, device="cpu")
    return model, card
