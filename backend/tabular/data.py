"""Data specs: a small JSON dict names a table, and `load_table(spec)` reads it (numpy only, no torch).

Specs (every one also takes `test_fraction` (0.3) and `split_seed` (0) for sets without their own split,
and `protected` to override the set's protected attributes):
  {"kind": "adult"} | {"kind": "german"} | {"kind": "compas"}       the built-in public sets
  {"kind": "synthetic", "n": 4000, "seed": 0, "effect": 1.0, "noise": 0.5}   planted dependence
  {"kind": "csv", "path": "...", "target": "income", "protected": ["sex"], "categorical": [...],
   "drop": [...], "positive": ">50K"}                                 a user's file
The spec goes on every checkpoint card, so a fooling or report job re-reads exactly the rows a model
was trained and tested on.
"""

from __future__ import annotations

from typing import Any

from backend.errors import InvalidDataset
from backend.tabular.table import Table

BUILTIN_KINDS = ("adult", "german", "compas")
TABLE_KINDS = (*BUILTIN_KINDS, "synthetic", "csv")
_COMMON = {"test_fraction": 0.3, "split_seed": 0, "protected": None}
_DEFAULTS: dict[str, dict[str, Any]] = {
    **{k: {} for k in BUILTIN_KINDS},
    "synthetic": {"n": 4000, "seed": 0, "effect": 1.0, "noise": 0.5},
    "csv": {"path": None, "target": None, "categorical": None, "drop": [], "positive": None},
}


def validate_spec(spec: dict | None) -> dict:
    """The spec with defaults filled in; `InvalidDataset` says what is wrong."""
    if not isinstance(spec, dict) or spec.get("kind") not in TABLE_KINDS:
        kind = spec.get("kind") if isinstance(spec, dict) else spec
        raise InvalidDataset(f"unknown data kind {kind!r}; choose one of {', '.join(TABLE_KINDS)}")
    kind = spec["kind"]
    allowed = {"kind", *_COMMON, *_DEFAULTS[kind]}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise InvalidDataset(f"{kind} data take no setting {', '.join(unknown)}; they take {sorted(allowed)}")
    out = {"kind": kind, **_COMMON, **_DEFAULTS[kind], **spec}
    try:
        out["test_fraction"] = float(out["test_fraction"])
        out["split_seed"] = int(out["split_seed"])
        if kind == "synthetic":
            out["n"], out["seed"] = int(out["n"]), int(out["seed"])
            out["effect"], out["noise"] = float(out["effect"]), float(out["noise"])
    except (TypeError, ValueError) as err:
        raise InvalidDataset(f"data settings must be numbers: {err}") from None
    if not 0.05 <= out["test_fraction"] <= 0.5:
        raise InvalidDataset(f"test_fraction must be in [0.05, 0.5], got {out['test_fraction']}")
    if kind == "synthetic" and not 20 <= out["n"] <= 1_000_000:
        raise InvalidDataset(f"the synthetic set takes 20 to 1,000,000 rows, not {out['n']}")
    if kind == "csv":
        for key in ("path", "target"):
            if not isinstance(out[key], str) or not out[key]:
                raise InvalidDataset(f"csv data need a {key}")
    for key in ("protected", "categorical", "drop"):
        if key in out and out[key] is not None:
            if isinstance(out[key], str):
                out[key] = [out[key]]
            if not isinstance(out[key], list) or not all(isinstance(c, str) for c in out[key]):
                raise InvalidDataset(f"{key} must be a list of column names")
    return out


def load_table(spec: dict) -> Table:
    """Read the table a (validated) spec names."""
    spec = validate_spec(spec)
    kind = spec["kind"]
    if kind in BUILTIN_KINDS:
        from backend.tabular.builtin import load_builtin

        table = load_builtin(kind)
    elif kind == "synthetic":
        from backend.tabular.synthetic import make_synthetic

        table = make_synthetic(spec["n"], spec["seed"], spec["effect"], spec["noise"])
    else:
        from pathlib import Path

        from backend.tabular.csv_io import read_csv

        table = read_csv(
            spec["path"],
            target=spec["target"],
            protected=spec["protected"] or [],
            categorical=spec["categorical"],
            drop=spec["drop"],
            positive=spec["positive"],
            name=Path(spec["path"]).name,
        )
    if spec["protected"] is not None and kind != "csv":
        table = _with_protected(table, spec["protected"])
    return table


def _with_protected(table: Table, protected: list[str]) -> Table:
    not_categorical = [p for p in protected if p not in table.categorical]
    if not_categorical:
        raise InvalidDataset(
            f"{', '.join(not_categorical)} cannot be protected here: the categorical columns are "
            f"{', '.join(table.categorical)}"
        )
    table.protected = list(protected)
    return table


def split_rows(table: Table, spec: dict):
    """(train rows, test rows) of a table loaded from `spec`."""
    return table.split(spec["test_fraction"], spec["split_seed"])
