"""The Tabular page's and the CLI's services: data choices, uploads, job configs, and what the charts show.

Cheap things (one person's explanation, the counterfactual panel, the importance bars of a few thousand
rows) run here in the calling process on the warm model; training, fooling and the report are jobs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.errors import InvalidConfig
from backend.jobs.records import JobRecord
from backend.models.checkpoint import Checkpoint
from backend.tabular import config as tab_config
from backend.tabular.builtin import BUILTIN
from backend.tabular.checkpoint import load_split, preprocessing_of
from backend.tabular.csv_io import csv_columns, read_bytes
from backend.tabular.measure import attributions, importance, normalised, probabilities, protected_share
from backend.tabular.report import method_params

SYNTHETIC_LABEL = "Synthetic (planted dependence on 'group')"

# The Tabular page's choices, from the tabular engine's registries.
TABLE_ATTACKS = tab_config.TABLE_ATTACKS
CLASSIFICATION = tab_config.CLASSIFICATION
FOOL_DEFAULTS = tab_config.FOOL_DEFAULTS
FOOL_PRESETS = tab_config.FOOL_PRESETS
REPORT_TESTS = tab_config.REPORT_TESTS


def table_methods(*, differentiable: bool = False) -> list[str]:
    """Explanation methods that explain table rows (only those that can sit in a loss, if asked)."""
    from backend.explain import METHODS

    return [
        n for n, s in METHODS.items() if "tabular" in s.inputs and (s.differentiable or not differentiable)
    ]


def method_label(name: str) -> str:
    from backend.explain import METHODS

    return METHODS[name].label


def data_choices() -> dict[str, tuple[str, bool]]:
    """kind -> (label, available now); the built-in sets need the fetched wheel."""
    from backend.tabular.sources import available

    ok = available()
    out = {kind: (label, ok) for kind, (label, _) in BUILTIN.items()}
    out["synthetic"] = (SYNTHETIC_LABEL, True)
    out["csv"] = ("Your CSV (upload)", True)
    return out


def save_upload(data: bytes, filename: str, *, session=None) -> Path:
    """Keep an uploaded CSV under <uploads>/tables/ by content hash (size checked before writing), where
    a job on any worker reads it (`backend.storage`); the session's upload quota and the disk budget
    are checked first."""
    from backend.services import policy
    from backend.storage import store_upload

    if not filename.lower().endswith((".csv", ".txt", ".tsv")):
        raise InvalidConfig(f"'{filename}' is not a CSV file; upload a .csv (or .tsv / .txt) table.")
    read_bytes(data)  # the size limit, before anything is written
    policy.check_upload(session, len(data), filename)
    return store_upload(data, "tables", ".csv")


def columns_of(path: str | Path) -> list[str]:
    return csv_columns(Path(path))


def validated(kind: str, config: dict) -> dict:
    """A job config checked by its kind (`InvalidConfig` / `InvalidDataset` say why)."""
    from backend.jobs.kinds import get_kind

    return get_kind(kind).validate(config)


def submit(kind: str, config: dict, *, session=None) -> str:
    """Queue a tabular job for `session` (quota and disk budget checked; `backend.access`)."""
    from backend.services import job_follow

    return job_follow.submit(kind, config, session=session)


def open_warm(card_id: str) -> Checkpoint:
    """The table model's handle, kept warm in this process (the pages' cache; shared: use its lock)."""
    from backend.services.checkpoints import checkpoint

    ck = checkpoint(card_id)
    preprocessing_of(ck.card)  # refuses an image model
    return ck


# -- what the charts show -------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _importance(card_id: str, sha: str, method: str, rows: int) -> tuple[dict[str, float], float]:
    ck = open_warm(card_id)
    prep = ck.preprocessing
    x = load_split(prep, _device(ck)).x_test[:rows]
    with ck.using() as model:
        norm = normalised(attributions(model, x, method, method_params(method, prep)))
    bars = importance(norm, prep.groups)
    share = protected_share(norm, torch.as_tensor(prep.protected_mask, device=x.device)).mean()
    return dict(zip(prep.group_names, map(float, bars), strict=True)), float(share)


def global_importance(card_id: str, method: str = "gradient", rows: int = 2000) -> dict[str, Any]:
    """The chart: mean share of |attribution| per feature over the first `rows` test rows."""
    from backend.services.checkpoints import registry
    from backend.singleflight import FLIGHTS

    card = registry().card(card_id)
    key = f"importance|{card_id}|{card.sha256}|{method}|{rows}"  # a class asking at once: computed once
    bars, share = FLIGHTS.do(key, lambda: _importance(card_id, card.sha256, method, rows)).value
    return {"bars": bars, "protected_share": share, "protected": preprocessing_of(card).protected_inputs}


def _device(ck: Checkpoint) -> torch.device:
    return torch.device(ck.device)


def n_test_rows(card_id: str) -> int:
    from backend.services.checkpoints import registry

    return len(load_split(preprocessing_of(registry().card(card_id))).test_rows)


def person(card_id: str, row: int) -> dict[str, Any]:
    """Test row `row`: its raw values, true label, and the model's decision and probabilities."""
    ck = open_warm(card_id)
    prep = ck.preprocessing
    split = load_split(prep, _device(ck))
    if not 0 <= row < len(split.test_rows):
        raise InvalidConfig(f"row must be between 0 and {len(split.test_rows) - 1}")
    index = split.test_rows[row]
    table = split.table
    values = {name: _plain(table.columns[name][index]) for name in table.features}
    with ck.using() as model:  # a forward on the shared model: not inside another session's explanation
        p = probabilities(model, split.x_test[row : row + 1])[0]
    return {
        "values": values,
        "label": table.classes[int(table.target[index])],
        "decision": table.classes[int(p.argmax())],
        "probabilities": dict(zip(table.classes, map(float, p), strict=True)),
        "protected": list(prep.protected),
    }


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, np.floating) else str(value)


def person_explanation(card_id: str, row: int, method: str = "gradient") -> dict[str, float]:
    """One person's signed attribution per feature (one-hot groups summed), for the decided class."""
    from backend.explain.groups import group_attributions

    ck = open_warm(card_id)
    prep = ck.preprocessing
    x = load_split(prep, _device(ck)).x_test[row : row + 1]
    with ck.using() as model:
        a = attributions(model, x, method, method_params(method, prep))
    grouped = group_attributions(a, prep.groups)[0]
    return dict(zip(prep.group_names, map(float, grouped), strict=True))


def counterfactuals(card_id: str, row: int) -> list[dict[str, Any]]:
    """For each protected input and each of its categories: the favourable probability and decision."""
    ck = open_warm(card_id)
    prep = ck.preprocessing
    split = load_split(prep, _device(ck))
    x = split.x_test[row : row + 1]
    own = {name: int(prep.category_index(x, name)[0]) for name in prep.protected_inputs}
    out = []
    for name in prep.protected_inputs:
        for k, cat in enumerate(prep.column(name).categories):
            with ck.using() as model:
                p = probabilities(model, prep.set_category(x, name, cat))[0]
            out.append(
                {
                    "attribute": name,
                    "set to": cat + (" (actual)" if own[name] == k else ""),
                    f"P({prep.classes[prep.positive]})": float(p[prep.positive]),
                    "decision": prep.classes[int(p.argmax())],
                }
            )
    return out


# -- finished runs ---------------------------------------------------------------------------------------
def runs(kind: str, key: str, checkpoint: str | None = None) -> list[JobRecord]:
    from backend.services.detect import runs as finished

    return finished(kind, key, checkpoint)


def finding_rows(result: dict) -> list[dict[str, Any]]:
    return [
        {
            "test": f["test"],
            "flagged": "yes" if f["flagged"] else "no",
            "verdict": f["verdict"],
            "rule": f["rule"],
        }
        for f in (result.get("report") or {}).get("findings", [])
    ]


def model_rows(result: dict) -> list[dict[str, Any]]:
    """One row per measured model: accuracy, the chart's protected share per method, flip rates."""
    out = []
    for role in ("baseline", "suspect", "without"):
        p = result.get(role)
        if not p:
            continue
        row: dict[str, Any] = {"model": role, "name": p["name"], "accuracy %": round(100 * p["accuracy"], 2)}
        for method, imp in p["importance"].items():
            row[f"protected share % ({method})"] = round(100 * imp["protected_share"], 2)
        for name, flips in p.get("flips", {}).items():
            row[f"flip rate % ({name})"] = round(100 * flips["flip_rate"], 2)
        out.append(row)
    return out
