"""A synthetic table with a planted dependence on a protected attribute: the ground truth is known.

Rows: four numeric features x1..x4 ~ N(0, 1), a categorical `region` (north / south / east) and the
protected `group` (a / b, half each). The label is

    y = 1[ x1 - 0.8 x2 + 0.5 x3 + r(region) + effect * (group == "b" ? 1 : -1) / 2 + noise > 0 ],

with noise ~ N(0, noise^2) and r = (0.3, -0.3, 0): x4 is pure noise (true importance zero) and flipping
`group` moves the score by exactly `effect`. So a model that fits the data must use `group`: its
accuracy drops without it (about 89% -> 83% with the defaults), flipping `group` changes about 30% of
its decisions, and an explanation that says `group` does not matter is a lie a test can catch.
Everything is drawn from `seed`.
"""

from __future__ import annotations

import numpy as np

from backend.errors import InvalidDataset
from backend.tabular.table import Table

REGIONS = ("north", "south", "east")
REGION_EFFECT = (0.3, -0.3, 0.0)
WEIGHTS = (1.0, -0.8, 0.5, 0.0)


def make_synthetic(n: int = 4000, seed: int = 0, effect: float = 1.0, noise: float = 0.5) -> Table:
    if n < 20:
        raise InvalidDataset(f"the synthetic set needs at least 20 rows, not {n}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(WEIGHTS)))
    region = rng.integers(0, len(REGIONS), n)
    group_b = rng.random(n) < 0.5
    score = x @ np.asarray(WEIGHTS) + np.asarray(REGION_EFFECT)[region]
    score = score + effect * np.where(group_b, 0.5, -0.5) + noise * rng.standard_normal(n)
    columns: dict[str, np.ndarray] = {f"x{i + 1}": x[:, i].copy() for i in range(x.shape[1])}
    columns["region"] = np.asarray(REGIONS)[region]
    columns["group"] = np.where(group_b, "b", "a")
    return Table(
        name="synthetic",
        columns=columns,
        numeric=[f"x{i + 1}" for i in range(x.shape[1])],
        categorical=["region", "group"],
        target=(score > 0).astype(np.int64),
        classes=["no", "yes"],
        target_name="y",
        protected=["group"],
        positive=1,
        source=f"synthetic (seed {seed}): group moves the score by {effect}",
    )
