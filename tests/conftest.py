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


# The shapes CNN that `train_shapes_model({"seed": 0})` gives on the development machine. A CPU of another
# make trains a slightly different model from the same seed (CI's reached 96.1% instead of 94.5% on the
# same 128 images), and the fooling and detection tests' margins were measured on this one; so every
# machine tests the same weights. tests/models/test_train_shapes.py still trains one from scratch.
SHAPES_WEIGHTS = Path(__file__).resolve().parent / "assets" / "shapes_cnn_seed0.safetensors"
SHAPES_SHA256 = "7e8c7b4454bcc04a12ce42717952dd3f10e9d6c9f8fe1e667d601230c37efc73"


@pytest.fixture(scope="session")
def shapes_model():
    """The small shapes CNN (seed 0), stored once per session in the session registry: (model, card)."""
    from safetensors.torch import load_file

    from backend.data.shapes import SHAPE_CLASSES
    from backend.models import zoo
    from backend.models.registry import Registry
    from backend.models.train_config import validate_config

    model = zoo.build("shapes_cnn", len(SHAPE_CLASSES))
    model.load_state_dict(load_file(SHAPES_WEIGHTS))
    registry = Registry()
    card = registry.save(
        model.eval(),
        name="shapes CNN",
        architecture="shapes_cnn",
        classes=list(SHAPE_CLASSES),
        preprocessing=zoo.spec("shapes_cnn").preprocessing,
        kind="trained",
        config=validate_config({"seed": 0}),
        metrics={"val_accuracy": 0.98},
    )
    assert card.sha256 == SHAPES_SHA256, "tests/assets/shapes_cnn_seed0.safetensors changed"
    model, card = registry.load(card.id, device="cpu")
    return model, card
