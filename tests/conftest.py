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


# The 32 px shapes CNN of `train_shapes_model({"seed": 0, "size": 32, "n_train": 8000, "epochs": 15})`
# (95.0% on its 500 validation images): the thesis attacks' model (Pasliev2020 fooled 32 px CIFAR images;
# a 32 px step costs a quarter of a 64 px one). Committed for the same reason as the 64 px one.
SHAPES32_WEIGHTS = SHAPES_WEIGHTS.with_name("shapes_cnn32_seed0.safetensors")
SHAPES32_SHA256 = "abe44799079386ad86947907625d9d78417f46d5faa32eb663df26139c375e9d"


def _committed_shapes_model(weights: Path, sha256: str, train_config: dict, accuracy: float, name: str):
    """Store a committed shapes CNN in the session registry: (model, card)."""
    from safetensors.torch import load_file

    from backend.data.shapes import SHAPE_CLASSES
    from backend.models import zoo
    from backend.models.preprocessing import Preprocessing
    from backend.models.registry import Registry
    from backend.models.train_config import validate_config

    config = validate_config(train_config)
    default = zoo.spec("shapes_cnn").preprocessing
    if config["size"] != default.size:
        default = Preprocessing(config["size"], None, default.mean, default.std)
    model = zoo.build("shapes_cnn", len(SHAPE_CLASSES))
    model.load_state_dict(load_file(weights))
    registry = Registry()
    card = registry.save(
        model.eval(),
        name=name,
        architecture="shapes_cnn",
        classes=list(SHAPE_CLASSES),
        preprocessing=default,
        kind="trained",
        config=config,
        metrics={"val_accuracy": accuracy},
    )
    assert card.sha256 == sha256, f"tests/assets/{weights.name} changed"
    model, card = registry.load(card.id, device="cpu")
    return model, card


@pytest.fixture(scope="session")
def shapes_model():
    """The small shapes CNN (seed 0), stored once per session in the session registry: (model, card)."""
    return _committed_shapes_model(SHAPES_WEIGHTS, SHAPES_SHA256, {"seed": 0}, 0.98, "shapes CNN")


@pytest.fixture(scope="session")
def shapes_model_32():
    """The 32 px shapes CNN (seed 0), stored once per session in the session registry: (model, card)."""
    config = {"seed": 0, "size": 32, "n_train": 8000, "epochs": 15}
    return _committed_shapes_model(SHAPES32_WEIGHTS, SHAPES32_SHA256, config, 0.95, "shapes CNN 32 px")


# A model the presets were not tuned on (`train_shapes_model({"seed": 7})` on the development machine,
# held-out accuracy 99.0%): tests that a preset holds beyond the fixture above.
SHAPES_SEED7_WEIGHTS = SHAPES_WEIGHTS.with_name("shapes_cnn_seed7.safetensors")
SHAPES_SEED7_SHA256 = "33361d54ece6d2668de6d9c8ad1a55d8506911f135516aa2c3cd6af9e2237b33"


@pytest.fixture(scope="session")
def shapes_model_seed7():
    """The shapes CNN of seed 7, stored once per session in the session registry: (model, card)."""
    return _committed_shapes_model(
        SHAPES_SEED7_WEIGHTS, SHAPES_SEED7_SHA256, {"seed": 7}, 0.99, "shapes CNN seed 7"
    )
