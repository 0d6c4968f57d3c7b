"""The checkpoint handle: one object for "this checkpoint" that every layer passes around.

`Registry.get(id)` returns a `Checkpoint`: the card, the typed preprocessing (input size and shape,
mean / std, the input value range LRP's z^beta bounds need), the class names, the model (loaded on
first use, sha256-checked, eval mode) and a lock. Code that used to pass an id here, a card and a
preprocessing dict there and a model elsewhere takes the handle (or resolves an id to one once, at
its edge: a job kind, a CLI command, a service).

Why the lock: the dashboard keeps one warm model per checkpoint for all browser sessions
(`backend.services.checkpoints`), and an explanation changes the model while it runs (train flags,
ReLU swapped for Softplus, LRP's forward hooks). Two sessions explaining the same checkpoint at once
would run inside each other's changes and could cache a wrong map, so `Checkpoint.explain` and
`Checkpoint.using()` hold the checkpoint's lock. A private copy (`fresh_model()`, what training and
the detection tests change) needs no lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from backend.errors import IncompatibleCheckpoint
from backend.explain import Explanation, explain
from backend.models.card import Card
from backend.models.input_range import InputRange
from backend.models.preprocessing import Preprocessing, preprocessing_from_dict

Loader = Callable[[Card, str], nn.Module]


class Checkpoint:
    """A registered checkpoint: card, typed preprocessing, lazily loaded model, lock.

    `loader(card, device)` builds the sha256-checked model (the registry's); `device` is where
    `model` lives (a `str`, e.g. "cpu" or "cuda:0").
    """

    def __init__(self, card: Card, loader: Loader, device: str) -> None:
        self.card = card
        self.preprocessing: Any = preprocessing_from_dict(card.preprocessing or {})
        self.device = str(device)
        self.lock = threading.RLock()
        self._loader = loader
        self._model: nn.Module | None = None

    def __repr__(self) -> str:
        return f"Checkpoint({self.card.id!r}, {self.card.architecture}, device={self.device})"

    # -- what the card says ------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.card.id

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def architecture(self) -> str:
        return self.card.architecture

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def num_classes(self) -> int:
        return int(self.card.num_classes)

    @property
    def sha256(self) -> str:
        return self.card.sha256

    @property
    def modality(self) -> str:
        """What the model takes: "image", or the preprocessing's kind (e.g. "tabular")."""
        return getattr(self.preprocessing, "kind", "image")

    # -- how it wants its inputs -------------------------------------------------------------------
    @property
    def image_preprocessing(self) -> Preprocessing:
        """The image preprocessing; `IncompatibleCheckpoint` for a model that takes other inputs."""
        if not isinstance(self.preprocessing, Preprocessing):
            raise IncompatibleCheckpoint(
                f"{self.name} ({self.id}) takes {self.modality} inputs, not images; pick an image model."
            )
        return self.preprocessing

    @property
    def input_size(self) -> int:
        """The square side (pixels) this checkpoint's images are fed at: the one answer to that."""
        return int(self.image_preprocessing.size)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input as the model takes it: (3, size, size) for images, (F,) for table rows."""
        return tuple(self.preprocessing.input_shape)

    @property
    def input_range(self) -> InputRange | None:
        """Per-channel bounds of the normalised input (None for table rows)."""
        return self.preprocessing.input_range

    # -- the model ---------------------------------------------------------------------------------
    def fresh_model(self, device: str | torch.device | None = None) -> nn.Module:
        """A private copy of the model (eval mode, tagged with `input_range`): to train or to alter."""
        model = self._loader(self.card, str(device or self.device))
        model.input_range = self.input_range
        return model.eval()

    @property
    def model(self) -> nn.Module:
        """The shared model, loaded on first use. Explain it through `explain` / `using()` (the lock)."""
        if self._model is None:
            with self.lock:
                if self._model is None:
                    self._model = self.fresh_model()
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @contextmanager
    def using(self) -> Iterator[nn.Module]:
        """Hold the lock while running the shared model with temporary changes (hooks, backward)."""
        with self.lock:
            yield self.model

    def explain(
        self, x: torch.Tensor, target: Any = None, method: str = "gradient", **kwargs: Any
    ) -> Explanation:
        """`backend.explain.explain` on the shared model, under its lock (see the module's docstring);
        a path method's deferred logits forward takes the lock too."""
        with self.using() as model:
            return explain(model, x, target, method, **kwargs).guarded(self.lock)
