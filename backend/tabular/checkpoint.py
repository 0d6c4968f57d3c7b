"""The one place where a tabular checkpoint is opened: card -> preprocessing, model, and its data.

Everything in this package goes through `open_checkpoint` / `preprocessing_of` / `load_split`; a table
model's handle is the registry's `Checkpoint` (its `preprocessing` is a `TabularPreprocessing`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from backend.errors import IncompatibleCheckpoint
from backend.models.checkpoint import Checkpoint
from backend.models.registry import Card, Registry
from backend.tabular.data import load_table, split_rows, validate_spec
from backend.tabular.preprocessing import KIND, TabularPreprocessing
from backend.tabular.table import Table


def is_tabular(card: Card) -> bool:
    return (card.preprocessing or {}).get("kind") == KIND


def preprocessing_of(card: Card) -> TabularPreprocessing:
    if not is_tabular(card):
        raise IncompatibleCheckpoint(
            f"{card.name} ({card.id}) is an image model; the tabular tools need a model trained on a table."
        )
    return TabularPreprocessing.from_dict(card.preprocessing)


def open_checkpoint(card_id: str, device: str | None = None, registry: Registry | None = None) -> Checkpoint:
    """The checkpoint handle of a table model (its model loads on first use); refuses image checkpoints."""
    registry = registry or Registry()
    preprocessing_of(registry.card(card_id))
    return registry.get(card_id, device=device)


@dataclass
class Split:
    """A table's train / test rows encoded for one preprocessing (inputs float32, labels int64)."""

    table: Table
    train_rows: np.ndarray
    test_rows: np.ndarray
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def protected_values(self, name: str, part: str = "test") -> np.ndarray:
        """The raw category of protected attribute `name` per row of `part` (also for dropped ones)."""
        rows = self.test_rows if part == "test" else self.train_rows
        return self.table.columns[name][rows]


@lru_cache(maxsize=4)
def _table(spec_json: str, stamp: float) -> Table:
    return load_table(json.loads(spec_json))


def cached_table(spec: dict) -> Table:
    """`load_table`, kept for a few specs per process (a CSV is re-read when its file changes)."""
    spec = validate_spec(spec)
    stamp = (
        Path(spec["path"]).stat().st_mtime if spec["kind"] == "csv" and Path(spec["path"]).is_file() else 0.0
    )
    return _table(json.dumps(spec, sort_keys=True), stamp)


def load_split(prep: TabularPreprocessing, device: str | torch.device = "cpu") -> Split:
    """The data the model behind `prep` was trained on, split and encoded as it was."""
    table = cached_table(prep.data)
    train, test = split_rows(table, validate_spec(prep.data))

    def enc(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(prep.encode({k: v[rows] for k, v in table.columns.items()}))
        return x.to(device), torch.from_numpy(table.target[rows]).to(device)

    x_train, y_train = enc(train)
    x_test, y_test = enc(test)
    return Split(table, train, test, x_train, y_train, x_test, y_test)
