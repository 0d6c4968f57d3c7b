"""Checkpoints for the pages: listing, labels with lineage, and checkpoint handles kept warm in this process.

Loading a checkpoint costs far more than explaining one image, so the app keeps the last few
`Checkpoint` handles (with their loaded models) keyed by (id, sha256, device); a renamed card reuses
its model, a replaced file is reloaded. Every browser session gets the same handle, so every
explanation of it runs under the handle's lock (`Checkpoint.explain` / `Checkpoint.using()`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from backend.config import get_settings
from backend.models.checkpoint import Checkpoint
from backend.models.registry import Card, Registry

_MAX_WARM = 6
_warm: OrderedDict[tuple[str, str, str], Checkpoint] = OrderedDict()
_lock = threading.Lock()


def registry() -> Registry:
    """The registry under the configured models dir (read each call, so tests can repoint it)."""
    return Registry()


def input_kind(card: Card) -> str:
    """What a checkpoint takes as input: "image", or its card preprocessing's kind (e.g. "tabular")."""
    return (card.preprocessing or {}).get("kind", "image")


def list_cards(modality: str | None = "image") -> list[Card]:
    """Checkpoints of one input kind (None: all), oldest first (a baseline before its fooled copies)."""
    cards = [c for c in registry().list() if modality is None or input_kind(c) == modality]
    return sorted(cards, key=lambda c: (c.created_at, c.name))


def label(card: Card) -> str:
    """A short human label: name, kind and, for fine-tuned copies, the parent it came from."""
    return f"{card.name} · {card.kind} · {card.id}"


def lineage_text(card: Card) -> str:
    """`root -> ... -> card` as names, for captions under a column."""
    try:
        chain = registry().lineage(card.id)
    except Exception:  # a parent deleted since: show what is known
        chain = [card]
    names = [c.name for c in chain]
    if names and names[-1] != card.name:  # lineage may be returned root-last
        names = names[::-1]
    return " → ".join(names)


def checkpoint(card_id: str) -> Checkpoint:
    """The warm checkpoint handle on the configured device (its model loads on first use, once)."""
    card = registry().card(card_id)
    key = (card.id, card.sha256, get_settings().device)
    with _lock:
        if key not in _warm:
            _warm[key] = registry().get(card.id, device=key[2])
            while len(_warm) > _MAX_WARM:
                _warm.popitem(last=False)
        _warm.move_to_end(key)
        handle = _warm[key]
    handle.card = card  # a rename shows at once; the weights are the same (same sha256)
    return handle


def input_size(card_id: str) -> int:
    """The square side a checkpoint's images are fed at (masks and targets are drawn at this size)."""
    return checkpoint(card_id).input_size


def forget(card_id: str) -> None:
    """Drop a deleted checkpoint's warm model."""
    with _lock:
        for key in [k for k in _warm if k[0] == card_id]:
            del _warm[key]
