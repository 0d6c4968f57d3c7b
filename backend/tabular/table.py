"""A data set before encoding: raw columns, the target, the protected attributes and the split.

Every source (the built-in Adult / German / COMPAS sets, a user's CSV, the synthetic generator) yields a
`Table`; `TabularPreprocessing.fit` turns one into model inputs. Numeric columns are float64 with NaN
for a missing value; categorical ones are string arrays (a missing value is its own category,
`MISSING`). Protected attributes are always categorical: the counterfactual test flips them between
their categories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.errors import InvalidDataset

MISSING = "(missing)"


@dataclass
class Table:
    name: str
    columns: dict[str, np.ndarray]
    numeric: list[str]
    categorical: list[str]
    target: np.ndarray  # int64 class index per row
    classes: list[str]
    protected: list[str]
    test: np.ndarray | None = None  # the data set's own split (bool per row: test row), or None
    positive: int = 1  # index of the favourable outcome in `classes` (fairness measures)
    target_name: str = "target"
    source: str = ""  # where the data come from, with its licence
    notes: list[str] = field(default_factory=list)  # what loading changed (dropped columns, ...)

    def __post_init__(self) -> None:
        n = len(self.target)
        for name, values in self.columns.items():
            if len(values) != n:
                raise InvalidDataset(f"column {name!r} has {len(values)} values for {n} rows")
        unknown = [c for c in self.numeric + self.categorical if c not in self.columns]
        if unknown:
            raise InvalidDataset(f"no column named {', '.join(unknown)}")
        not_categorical = [p for p in self.protected if p not in self.categorical]
        if not_categorical:
            raise InvalidDataset(
                f"protected attribute(s) {', '.join(not_categorical)} must be categorical columns"
            )
        if not 0 <= self.positive < len(self.classes):
            raise InvalidDataset(f"positive class index {self.positive} is not one of {self.classes}")

    def __len__(self) -> int:
        return len(self.target)

    @property
    def features(self) -> list[str]:
        """Input columns in a fixed order: numeric first, then categorical (as the thesis lists Adult's)."""
        return self.numeric + self.categorical

    def rows(self, index: np.ndarray) -> Table:
        """The table restricted to `index` (row numbers or a boolean mask)."""
        return Table(
            name=self.name,
            columns={k: v[index] for k, v in self.columns.items()},
            numeric=list(self.numeric),
            categorical=list(self.categorical),
            target=self.target[index],
            classes=list(self.classes),
            protected=list(self.protected),
            test=None if self.test is None else self.test[index],
            positive=self.positive,
            target_name=self.target_name,
            source=self.source,
            notes=list(self.notes),
        )

    def split(self, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(train rows, test rows): the data set's own split if it has one, else a seeded random one."""
        if self.test is not None:
            return np.flatnonzero(~self.test), np.flatnonzero(self.test)
        order = np.random.default_rng(seed).permutation(len(self))
        n_test = max(1, int(round(test_fraction * len(self))))
        if n_test >= len(self):
            raise InvalidDataset(f"a test fraction of {test_fraction} leaves no training rows")
        return np.sort(order[n_test:]), np.sort(order[:n_test])


def categorical(values: list[str] | np.ndarray) -> np.ndarray:
    """Strings with blanks read as the missing category."""
    arr = np.asarray([str(v).strip() for v in values], dtype=str)
    return np.where(arr == "", MISSING, arr)


def numeric(values: list[str] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
