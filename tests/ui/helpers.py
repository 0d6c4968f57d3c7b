"""Helpers shared by the UI and browser tests (fixtures live in the conftest files)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The pages only need a real trained model; the full-size shapes CNN costs minutes on a loaded CPU.
TINY_SHAPES = {"seed": 0, "size": 32, "n_train": 300, "n_val": 50, "epochs": 2, "name": "tiny shapes"}


def train_tiny_shapes(root: Path):
    """Train the small shapes CNN into a registry at `root`; returns (model, card)."""
    from backend.models.registry import Registry
    from backend.models.train_shapes import train_shapes_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOOLING_LAB_MODELS", str(root))
        card = train_shapes_model(dict(TINY_SHAPES))
    return Registry(root=root).load(card.id, device="cpu")


def messages(at, kind: str = "error") -> list[str]:
    """All texts of st.error / st.success / ... elements (main area and sidebar)."""
    return [e.value for e in getattr(at, kind)]
