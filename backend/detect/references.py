"""Reference numbers of clean models, for a report card without a clean twin.

A report card compares a suspect with a clean baseline of the same architecture. When the user has none,
the card compares with what the detection tests measured on a clean model of that architecture and
method: shipped for the built-in models (`assets/detect_references.json`, made by
`tools/make_detect_references.py` with the detect job's defaults) or measured by a `detect` job on a
clean checkpoint with `save_reference: true` (kept in `<data>/detect_references.json`, which wins over
the shipped file). The card then says which reference it used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from backend.config import ASSETS_DIR, get_settings
from backend.storage import write_atomic

SHIPPED = ASSETS_DIR / "detect_references.json"
_TESTS = ("noise_inputs", "weight_noise", "randomization")


def _local() -> Path:
    return get_settings().data_dir / "detect_references.json"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def key(architecture: str, method: str) -> str:
    return f"{architecture}/{method}"


def reference_for(architecture: str, method: str) -> dict | None:
    """`{"results": {test: ...}, "source": "..."}` for this architecture and method, or None."""
    k = key(architecture, method)
    return _read(_local()).get(k) or _read(SHIPPED).get(k)


def save_reference(
    architecture: str, method: str, results: dict, source: str, path: Path | None = None
) -> dict:
    """Keep a clean model's detection results as the reference of its architecture and method."""
    path = path or _local()
    entry = {
        "results": {t: results[t] for t in _TESTS if t in results},
        "source": f"{source}, measured {time.strftime('%Y-%m-%d')}",
    }
    table = _read(path)
    table[key(architecture, method)] = entry
    write_atomic(path, json.dumps(table, indent=1, sort_keys=True).encode())
    return entry
