"""How a tabular model wants its rows: numeric columns standardised, categorical ones one-hot encoded.

Stored on the checkpoint card (`to_dict` / `from_dict`, with `"kind": "tabular"`), so a checkpoint is
always fed as it was trained: the means and standard deviations come from the training rows, a missing
number becomes the training mean (0 after standardising), an unseen or missing category an all-zero
one-hot group. Each input column has a name (`age`, `race=White`); each source column is a *group*
of input columns (one for a number, one per category for a categorical), which is what grouped
attributions sum over and what feature ablation removes together. `protected` names the protected
attributes; a model trained without them (`dropped`) still knows them for the fairness measures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.errors import InvalidConfig, InvalidDataset
from backend.tabular.table import Table

KIND = "tabular"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "numeric" | "categorical"
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.categories)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "numeric":
            return {"name": self.name, "kind": "numeric", "mean": self.mean, "std": self.std}
        return {"name": self.name, "kind": "categorical", "categories": list(self.categories)}


@dataclass(frozen=True)
class TabularPreprocessing:
    columns: tuple[Column, ...]
    target: str
    classes: tuple[str, ...]
    protected: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()  # protected attributes left out of the inputs
    positive: int = 1
    data: dict = field(default_factory=dict, compare=False)  # the data spec the model was trained on

    kind = KIND

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if not self.columns or len(set(names)) != len(names):
            raise InvalidConfig("tabular preprocessing needs at least one column, with unique names")
        for c in self.columns:
            if c.kind not in ("numeric", "categorical") or (c.kind == "categorical" and not c.categories):
                raise InvalidConfig(
                    f"column {c.name!r}: a numeric column or a categorical one with categories"
                )
            if c.kind == "numeric" and not c.std > 0:
                raise InvalidConfig(f"column {c.name!r}: std must be positive")
        stray = [p for p in self.protected if p not in names and p not in self.dropped]
        if stray:
            raise InvalidConfig(f"protected attribute(s) {stray} are neither inputs nor dropped")

    # -- fitting ------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, table: Table, rows: np.ndarray, *, drop_protected: bool = False, data: dict | None = None):
        """Statistics from the training `rows` of `table`; protected columns left out if asked."""
        cols = []
        dropped = tuple(table.protected) if drop_protected else ()
        for name in table.features:
            if name in dropped:
                continue
            values = table.columns[name][rows]
            if name in table.numeric:
                present = values[~np.isnan(values)]
                mean = float(present.mean()) if present.size else 0.0
                std = float(present.std()) if present.size else 0.0
                cols.append(Column(name, "numeric", mean, std if std > 1e-12 else 1.0))
            else:
                cols.append(Column(name, "categorical", categories=tuple(sorted(set(values.tolist())))))
        if not cols:
            raise InvalidDataset("no input column is left once the protected attributes are dropped")
        return cls(
            columns=tuple(cols),
            target=table.target_name,
            classes=tuple(table.classes),
            protected=tuple(table.protected),
            dropped=dropped,
            positive=table.positive,
            data=dict(data or {}),
        )

    # -- layout -------------------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def input_shape(self) -> tuple[int]:
        """(F,): one encoded row as the model takes it."""
        return (self.n_features,)

    # Rows have no pixel range: LRP on rows uses no bounds (z^beta is refused there).
    input_range = None

    @property
    def feature_names(self) -> list[str]:
        out = []
        for c in self.columns:
            out += [c.name] if c.kind == "numeric" else [f"{c.name}={v}" for v in c.categories]
        return out

    @property
    def groups(self) -> list[list[int]]:
        """Input column indices of each source column, in order (a one-hot group is one entry)."""
        out, start = [], 0
        for c in self.columns:
            out.append(list(range(start, start + c.width)))
            start += c.width
        return out

    @property
    def group_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def group_of(self, name: str) -> list[int]:
        for c, g in zip(self.columns, self.groups):
            if c.name == name:
                return g
        raise InvalidConfig(f"{name!r} is not an input of this model; inputs: {', '.join(self.group_names)}")

    @property
    def protected_inputs(self) -> list[str]:
        """Protected attributes that are model inputs (not dropped)."""
        return [p for p in self.protected if p not in self.dropped]

    @property
    def protected_mask(self) -> np.ndarray:
        """(F,) bool: input columns that belong to a protected attribute."""
        mask = np.zeros(self.n_features, dtype=bool)
        for p in self.protected_inputs:
            mask[self.group_of(p)] = True
        return mask

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise InvalidConfig(f"no column {name!r}")

    # -- encoding -----------------------------------------------------------------------------------
    def encode(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """(N, F) float32 model inputs from raw columns (a `Table.columns` or one person's values)."""
        missing = [c.name for c in self.columns if c.name not in columns]
        if missing:
            raise InvalidDataset(f"the rows lack the column(s) {', '.join(missing)}")
        parts = []
        for c in self.columns:
            values = np.asarray(columns[c.name])
            if c.kind == "numeric":
                v = values.astype(np.float64)
                v = np.where(np.isnan(v), c.mean, v)
                parts.append(((v - c.mean) / c.std)[:, None])
            else:
                v = values.astype(str)
                parts.append((v[:, None] == np.asarray(c.categories)[None, :]).astype(np.float64))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def set_category(self, x, name: str, category: str):
        """A copy of inputs `x` (N, F) (numpy or torch) with the one-hot group `name` set to `category`."""
        col = self.column(name)
        if col.kind != "categorical" or category not in col.categories:
            raise InvalidConfig(f"{category!r} is not a category of {name!r}: {list(col.categories)}")
        idx = self.group_of(name)
        out = x.clone() if hasattr(x, "clone") else x.copy()
        out[:, idx] = 0
        out[:, idx[col.categories.index(category)]] = 1
        return out

    def category_index(self, x, name: str) -> np.ndarray:
        """(N,) index of each row's category of `name` (-1 where the group is all zero); numpy or torch."""
        block = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)[:, self.group_of(name)]
        return np.where(block.max(1) > 0.5, block.argmax(1), -1)

    # -- card ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "columns": [c.to_dict() for c in self.columns],
            "target": self.target,
            "classes": list(self.classes),
            "protected": list(self.protected),
            "dropped": list(self.dropped),
            "positive": int(self.positive),
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, data: dict) -> TabularPreprocessing:
        if data.get("kind") != KIND:
            raise InvalidConfig(f"not a tabular preprocessing (kind {data.get('kind')!r})")
        unknown = set(data) - {
            "kind",
            "columns",
            "target",
            "classes",
            "protected",
            "dropped",
            "positive",
            "data",
        }
        if unknown:
            raise InvalidConfig(f"unknown tabular preprocessing fields: {', '.join(sorted(unknown))}")
        try:
            columns = tuple(
                Column(
                    c["name"],
                    c["kind"],
                    float(c.get("mean", 0.0)),
                    float(c.get("std", 1.0)),
                    tuple(str(v) for v in c.get("categories", ())),
                )
                for c in data["columns"]
            )
            return cls(
                columns=columns,
                target=str(data.get("target", "target")),
                classes=tuple(data["classes"]),
                protected=tuple(data.get("protected", ())),
                dropped=tuple(data.get("dropped", ())),
                positive=int(data.get("positive", 1)),
                data=dict(data.get("data", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidConfig(f"tabular preprocessing is malformed: {err}") from None
