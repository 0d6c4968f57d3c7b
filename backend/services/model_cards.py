"""Model cards for people: what a checkpoint is, where it came from, how it was fooled, what was
measured, and its lineage, in sentences (the raw card stays one click away).

A card's JSON is exact but unreadable in class ("val_agreement 0.65", a config of forty keys); this
turns it into a `CardStory` the Models page renders, with the numbers named and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from backend.models.preprocessing import preprocessing_from_dict
from backend.models.registry import Card

KIND_TEXT = {
    "pretrained": "Pretrained weights shipped with the lab",
    "trained": "Trained by the lab",
    "fooled": "A fooled copy: fine-tuned so that its explanations lie while its predictions stay",
    "uploaded": "Uploaded weights",
    "defended": "A defended copy: trained to keep its explanations robust to manipulation",
}
# metric name -> (label, is a share shown in %)
METRIC_TEXT = {
    "fsr": ("fooling success rate (FSR)", True),
    "agreement": ("same prediction as the original", True),
    "accuracy": ("accuracy", True),
    "test_accuracy": ("test accuracy", True),
    "test_loss": ("mean test loss of the attack", False),
    "protected_share": ("share of importance on protected attributes", True),
    "kept_step": ("weights kept from step", False),
}


@dataclass
class CardStory:
    title: str
    what: str  # architecture, classes, input
    origin: str  # how it came to be (kind + parent)
    how: list[str] = field(default_factory=list)  # how it was fooled / trained: one line per setting
    numbers: list[dict] = field(default_factory=list)  # {"measure", "value", "measured on"}
    lineage: list[Card] = field(default_factory=list)  # root first, this card last
    children: list[Card] = field(default_factory=list)


def _arch_label(name: str) -> str:
    from backend.models.zoo import ARCHITECTURES

    spec = ARCHITECTURES.get(name)
    return spec.label if spec is not None else name


def _value(name: str, value: object) -> str:
    _, share = METRIC_TEXT.get(name.removeprefix("val_").removesuffix("_before"), (name, False))
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if share and isinstance(value, int | float):
        return f"{100 * float(value):.1f}%"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def numbers(card: Card) -> list[dict]:
    """The card's measured numbers with names a class reads, agreement before accuracy, and how many
    images each was measured on where the card says."""
    m = card.metrics or {}
    n, known = m.get("val_n"), m.get("val_n_labelled")
    order = ["val_fsr", "fsr", "val_agreement", "agreement", "val_accuracy", "accuracy", "test_accuracy"]
    names = [k for k in order if k in m] + [
        k for k in m if k not in order and k not in ("val_n", "val_n_labelled")
    ]
    rows = []
    for key in names:
        base = key.removeprefix("val_")
        label, _ = METRIC_TEXT.get(base.removesuffix("_before"), (key.replace("_", " "), False))
        if base.endswith("_before"):
            label += " (before)"
        where = "held-out images" if key.startswith("val_") else ""
        if key in ("val_fsr", "val_agreement", "val_test_loss") and n:
            where = f"{n} held-out images"
        if key == "val_accuracy":
            if known == 0:
                continue  # no labels known: an accuracy would mean nothing
            where = f"the {known} held-out images with known labels" if known else where
        rows.append({"measure": label, "value": _value(key, m[key]), "measured on": where})
    return rows


def _how(card: Card) -> list[str]:
    cfg = card.config or {}
    if card.kind != "fooled":
        out = []
        if cfg.get("source_file"):
            out.append(f"from the file '{cfg['source_file']}'")
        if cfg.get("epochs"):
            out.append(f"{cfg['epochs']} epochs")
        if isinstance(cfg.get("data"), dict):
            out.append(f"data: {cfg['data'].get('kind')}")
        return out
    from backend.explain import METHODS
    from backend.fool.losses import FOOLING_ATTACKS

    attack = FOOLING_ATTACKS.get(cfg.get("attack", ""))
    method = METHODS.get(cfg.get("interpreter", ""))
    out = []
    if attack is not None:
        out.append(f"attack: {attack.label} — {attack.description}")
    if method is not None:
        out.append(f"explanation it lies about: {method.label} — {method.description}")
    if cfg.get("lam") is not None:
        out.append(f"weight of the fooling term λ = {cfg['lam']}, learning rate {cfg.get('lr')}")
    if cfg.get("steps"):
        out.append(f"{cfg['steps']} steps of {cfg.get('batch_size')} images")
    ds = cfg.get("dataset") or {}
    if ds:
        out.append("images: " + ", ".join(f"{k} {v}" for k, v in ds.items() if k != "path"))
    if cfg.get("classification"):
        out.append(f"how predictions were kept: {cfg['classification']}")
    return out


def story(card: Card, cards: list[Card]) -> CardStory:
    """The card told for people; `cards` (the registry's) give the parent's name, lineage and children."""
    by_id = {c.id: c for c in cards}
    chain, seen = [card], {card.id}
    while chain[0].parent and chain[0].parent in by_id and chain[0].parent not in seen:
        chain.insert(0, by_id[chain[0].parent])
        seen.add(chain[0].id)
    size = getattr(preprocessing_from_dict(card.preprocessing or {}), "size", None)  # images only
    classes = ", ".join(card.classes[:5]) + (
        f" and {card.num_classes - 5} more" if card.num_classes > 5 else ""
    )
    what = f"{_arch_label(card.architecture)}, {card.num_classes} classes ({classes})"
    what += f", {size} px input" if size else ""
    origin = KIND_TEXT.get(card.kind, card.kind)
    if card.parent:
        parent = by_id.get(card.parent)
        origin += f", from {parent.name if parent else card.parent + ' (deleted)'}"
    origin += "."
    return CardStory(
        title=card.name,
        what=what,
        origin=origin,
        how=_how(card),
        numbers=numbers(card),
        lineage=chain,
        children=[c for c in cards if c.parent == card.id],
    )


def lineage_graph(s: CardStory) -> tuple[list[str], list[str], list[str]]:
    """(ids, labels, parents) of the card's ancestors, itself and its children, for `tree_figure`."""
    nodes = [*s.lineage, *s.children]
    ids = [c.id for c in nodes]
    labels = [f"{c.name} ({c.kind})" for c in nodes]
    parents = [c.parent if c.parent in ids else "" for c in nodes]
    return ids, labels, parents
