"""A checkpoint's card: the JSON record next to its weights (`<id>.json`), what the registry lists.

Its own module so that the registry and the checkpoint handle (`backend.models.checkpoint`) can both
use it without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

CHECKPOINT_KINDS = ("pretrained", "trained", "fooled", "uploaded", "defended")


@dataclass
class Card:
    """Everything needed to rebuild and judge a checkpoint; stored as `<id>.json`."""

    id: str
    name: str
    architecture: str
    num_classes: int
    classes: list[str]
    preprocessing: dict
    parent: str | None
    kind: str  # one of CHECKPOINT_KINDS
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    sha256: str = ""
    created_at: str = ""
    arch_options: dict = field(default_factory=dict)  # constructor knobs, e.g. {"width": 16}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Card:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
