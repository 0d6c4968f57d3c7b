"""The Models page's services: the lineage tree, upload with an architecture, rename, delete + cache."""

from __future__ import annotations

from pathlib import Path

from backend import storage
from backend.access import Session
from backend.cache import ResultCache
from backend.errors import FoolingLabError, InvalidConfig
from backend.models.registry import Card
from backend.services import policy
from backend.services.checkpoints import forget, list_cards, registry

UPLOAD_SUFFIXES = (".safetensors", ".pt", ".pth")


def architectures() -> list[str]:
    """Architectures an uploaded state dict can be registered for (not those whose preprocessing comes
    from training, such as the tabular MLP's columns)."""
    from backend.models.zoo import ARCHITECTURES

    return [name for name, spec in ARCHITECTURES.items() if spec.preprocessing is not None]


def train_fields() -> list:
    """The `train` job's settings as form fields (shapes CNN or the thesis's CIFAR VGG16 on the shapes),
    limits from `backend.models.train_config`, the run settings (global batch, devices, device) from
    `backend.devices.run_fields`."""
    from backend.devices import run_fields
    from backend.forms import FieldSpec
    from backend.models.train_config import ARCHITECTURES, DEFAULTS, LIMITS

    def number(name: str, label: str) -> FieldSpec:
        lo, hi = LIMITS[name]
        return FieldSpec(name, "int", DEFAULTS[name], label=label, min=lo, max=hi)

    return [
        FieldSpec("architecture", "choice", DEFAULTS["architecture"], choices=ARCHITECTURES),
        number("size", "Image size (px)"),
        number("epochs", "Epochs"),
        number("n_train", "Training images"),
        number("n_val", "Held-out images"),
        FieldSpec("lr", "float", DEFAULTS["lr"], label="Learning rate", min=1e-6, max=1.0, format="%.1e"),
        FieldSpec("seed", "int", DEFAULTS["seed"], label="Seed", min=0),
        FieldSpec("name", "text", None, label="Name (optional)", optional=True),
        *run_fields(DEFAULTS["batch_size"], max_batch=LIMITS["batch_size"][1]),
    ]


def form_context():
    """The train form's context: no checkpoint yet, so no classes or layers to choose from."""
    from backend.forms import FormContext

    return FormContext(classes=[])


def build_train_config(values: dict) -> dict:
    """The `train` job's config from the form's raw values (coerced by `train_fields`), validated by
    the job kind (`InvalidConfig` says what to change)."""
    from backend.forms import coerce_all
    from backend.jobs.kinds import get_kind

    config = {k: v for k, v in coerce_all(train_fields(), values).items() if v is not None}
    return get_kind("train").validate(config)


def lineage_tree(cards: list[Card] | None = None) -> tuple[list[str], list[str], list[str]]:
    """(ids, labels, parents) for a tree chart; a card whose parent is gone becomes a root."""
    cards = list_cards(None) if cards is None else cards
    known = {c.id for c in cards}
    ids = [c.id for c in cards]
    labels = [f"{c.name} ({c.kind})" for c in cards]
    parents = [c.parent if c.parent in known else "" for c in cards]
    return ids, labels, parents


def card_summary(card: Card) -> dict:
    """The fields a card shows, flat (for a table / the card view)."""
    return {
        "name": card.name,
        "id": card.id,
        "kind": card.kind,
        "architecture": card.architecture,
        "classes": card.num_classes,
        "parent": card.parent or "",
        "created": card.created_at,
        "sha256": card.sha256[:12],
    }


def upload(
    data: bytes,
    filename: str,
    *,
    architecture: str,
    name: str,
    classes: list[str] | None = None,
    session: Session | None = None,
) -> Card:
    """Register an uploaded state dict (safetensors or weights-only .pt) for `architecture` (the
    presenter only).

    The file is kept under uploads/ by content hash; the registry refuses pickles that need code
    (`UnsafeCheckpoint`) and weights that do not fit (`IncompatibleCheckpoint`), storing nothing then.
    Error messages name `filename` (the user's file), never the stored copy's hash name.
    """
    policy.require_presenter(session, "upload checkpoints")
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidConfig(f"'{filename}' is not a checkpoint; upload a {', '.join(UPLOAD_SUFFIXES)} file.")
    if not name.strip():
        raise InvalidConfig("Give the uploaded checkpoint a name.")
    policy.check_upload(session, len(data), filename)
    path = storage.store_upload(data, "checkpoints", suffix)
    try:
        return registry().upload(
            path, architecture=architecture, name=name.strip(), classes=classes, source_name=filename
        )
    except FoolingLabError as err:
        raise type(err)(str(err).replace(str(path), filename).replace(path.name, filename)) from err
    finally:
        path.unlink(missing_ok=True)


def rename(card_id: str, name: str, *, session: Session | None = None) -> Card:
    policy.require_presenter(session, "rename checkpoints")
    if not name.strip():
        raise InvalidConfig("A checkpoint name cannot be empty.")
    return registry().rename(card_id, name.strip())


def delete(card_id: str, *, session: Session | None = None) -> int:
    """Delete the checkpoint, its cached results (tagged with its sha256) and its warm copy (the
    presenter only).

    Returns how many cache entries went with it.
    """
    policy.require_presenter(session, "delete checkpoints")
    reg = registry()
    sha = reg.card(card_id).sha256
    reg.delete(card_id)
    forget(card_id)
    if any(c.sha256 == sha for c in reg.list()):  # an identical copy still uses those entries
        return 0
    with ResultCache() as cache:
        return cache.evict_tag(sha)
