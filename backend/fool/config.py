"""FoolConfig: everything one fooling run needs, as a dataclass that round-trips through JSON.

`validate()` refuses a config before anything is queued, with a message that says what to change.
The objective is L = L_C + lam * L_F (Krishna2021 eq. 2). Note the thesis (Pasliev2020) writes
lam*L_C + (1-lam)*L_M; its presets are converted to our form in `presets.py`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from backend.errors import CheckpointNotFound, InvalidConfig, InvalidDataset

CLASSIFICATION_TERMS = ("labels", "original_predictions", "keep_probs_mse", "keep_probs_kl")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
# how and where a run runs, not what it computes: a resumable state need not agree on these
RUNTIME_SETTINGS = frozenset(
    {"device", "devices", "num_workers", "state_every_s", "checkpoint_every", "name"}
)


@dataclass
class FoolConfig:
    model: str  # checkpoint id in the registry (the parent of the fooled model)
    dataset: dict[str, Any]  # a backend.data.datasets spec; images the attack trains on
    attack: str = "location"
    attack_params: dict[str, Any] = field(default_factory=dict)
    interpreter: str = "gradcam"
    interpreter_params: dict[str, Any] = field(default_factory=dict)
    layer: str | None = None  # target layer of layer-based methods; None = the model's default
    normalization: str | None = None  # None = the paper's normalisation for the interpreter
    lam: float = 1.0  # lambda, weight of the fooling term
    classification: str = "labels"
    val_dataset: dict[str, Any] | None = None  # held-out images; None = a split of `dataset`
    val_fraction: float = 0.2
    val_every: int = 0  # validate every N steps (0 = only at the end)
    val_size: int = 64  # images used by periodic validation
    # end with the weights of the best periodic validation (highest FSR, then agreement) instead of the
    # last step's: some attacks peak and fall back (centre-mass on full LRP). Needs val_every; the
    # validation images then also chose the weights, so judge the result on other images.
    keep_best: bool = False
    optimizer: str = "adam"
    lr: float = 1e-6
    weight_decay: float = 0.0
    momentum: float = 0.9
    batch_size: int = 8
    steps: int | None = None  # optimisation steps; None = `epochs` passes over the training images
    epochs: int = 1
    grad_clip: float | None = None  # max gradient norm
    lr_schedule: str = "constant"  # or "cosine": decay to 0 over the run (lets accuracy settle)
    freeze_classifier: bool = False  # keep the last Linear layer(s) fixed (Pasliev2020 §3.7)
    train_first_n: int | None = None  # train only the first N parameterised layers
    freeze_batchnorm: bool = True  # BatchNorm uses its running statistics (eval mode), as the original code
    softplus_beta: float | None = None  # softplus(beta) instead of ReLU while training (Pasliev2020: 20)
    # fp16 autocast + GradScaler on CUDA, bf16 autocast on the CPU (refused for interpreters whose maps
    # bf16 breaks: see backend.fool.precision)
    mixed_precision: bool = False
    seed: int = 0
    # resumable state (when a state_dir is given) is written every `state_every_s` seconds, at the end,
    # and, if set, every `checkpoint_every` steps; a background thread writes it, the loop only copies
    state_every_s: float = 600.0
    checkpoint_every: int | None = None
    name: str | None = None  # name of the fooled checkpoint
    device: str | None = None  # None = settings.device
    # data-parallel processes (torch.distributed): `batch_size` is the global batch, each of the
    # `devices` processes takes batch_size / devices of it; on CUDA one GPU each, on the CPU gloo
    devices: int = 1
    num_workers: int | None = None  # image-decoding worker processes; None = from the CPU count

    @property
    def device_batch(self) -> int:
        """The batch each data-parallel process computes (the global batch split evenly)."""
        return int(self.batch_size) // max(1, int(self.devices))

    def resume_key(self) -> str:
        """The settings a resumable state must agree on: everything but how and where the run runs
        (device, process count, workers, how often state is written, the name), so a retried job can
        resume on another machine."""
        kept = {k: v for k, v in self.to_dict().items() if k not in RUNTIME_SETTINGS}
        return json.dumps(kept, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FoolConfig:
        """Build from a JSON-like dict; `lambda` is accepted for `lam`; unknown keys are refused."""
        if not isinstance(data, dict):
            raise InvalidConfig("A fooling config must be a JSON object (a dict of settings).")
        data = dict(data)
        if "lambda" in data:
            data["lam"] = data.pop("lambda")
        if "world_size" in data:  # torch.distributed's word for it
            world = data.pop("world_size")
            data.setdefault("devices", world)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidConfig(
                f"Unknown fooling setting(s) {unknown}; known settings: {', '.join(sorted(names))}"
            )
        missing = [n for n in ("model", "dataset") if n not in data]
        if missing:
            raise InvalidConfig(
                f"The fooling config needs {' and '.join(missing)} (a checkpoint id / a dataset spec)."
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def total_steps(self, n_train: int) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, self.epochs * -(-n_train // self.batch_size))

    def validate(self, registry=None) -> FoolConfig:
        """Check every setting; with a registry also that the model exists. Returns self."""
        from backend.explain import METHODS
        from backend.fool.losses import FOOLING_ATTACKS

        if self.attack not in FOOLING_ATTACKS:
            raise InvalidConfig(
                f"Unknown attack {self.attack!r}; choose one of {', '.join(FOOLING_ATTACKS)}."
            )
        if self.interpreter not in METHODS:
            raise InvalidConfig(
                f"Unknown explanation method {self.interpreter!r}; choose one of {', '.join(METHODS)}."
            )
        if not METHODS[self.interpreter].differentiable:
            usable = [n for n, m in METHODS.items() if m.differentiable]
            raise InvalidConfig(
                f"{self.interpreter!r} cannot be differentiated, so it cannot drive a fooling loss; "
                f"use one of {', '.join(usable)}."
            )
        unknown_params = set(self.interpreter_params) - set(METHODS[self.interpreter].params)
        if unknown_params:
            raise InvalidConfig(
                f"{self.interpreter!r} has no parameter(s) {sorted(unknown_params)}; "
                f"its parameters: {', '.join(METHODS[self.interpreter].params) or 'none'}."
            )
        if self.normalization is not None:
            from backend.explain.normalize import NORMALIZERS

            if self.normalization not in NORMALIZERS:
                raise InvalidConfig(
                    f"Unknown normalisation {self.normalization!r}; "
                    f"choose one of {', '.join(NORMALIZERS)}."
                )
        _check(
            isinstance(self.lam, (int, float)) and self.lam >= 0, f"lambda must be >= 0, not {self.lam!r}."
        )
        _check(
            self.classification in CLASSIFICATION_TERMS,
            f"classification must be one of {CLASSIFICATION_TERMS}.",
        )
        _check(
            self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}."
        )
        _check(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}.")
        _check(self.lr > 0, f"The learning rate must be > 0, not {self.lr}.")
        _check(int(self.batch_size) >= 1, f"batch_size must be >= 1, not {self.batch_size}.")
        _check(
            self.steps is None or int(self.steps) >= 1, f"steps must be >= 1 (or empty), not {self.steps}."
        )
        _check(int(self.epochs) >= 1, f"epochs must be >= 1, not {self.epochs}.")
        _check(0 < self.val_fraction < 1, f"val_fraction must lie in (0, 1), not {self.val_fraction}.")
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0 (or empty for none).")
        _check(
            self.softplus_beta is None or self.softplus_beta > 0,
            "softplus_beta must be > 0 (Pasliev2020 uses 20).",
        )
        _check(
            self.train_first_n is None or self.train_first_n >= 1, "train_first_n must be >= 1 (or empty)."
        )
        _check(
            self.checkpoint_every is None or int(self.checkpoint_every) >= 1,
            "checkpoint_every must be >= 1 (or empty: write state by time only).",
        )
        _check(self.state_every_s > 0, f"state_every_s must be > 0 seconds, not {self.state_every_s}.")
        _check(
            self.num_workers is None or int(self.num_workers) >= 0,
            "num_workers must be >= 0 (0 = decode in the training process; empty = from the CPU count).",
        )
        if self.mixed_precision and self.device:  # else the worker's device decides, when it runs
            from backend.fool.precision import precision_for

            precision_for(self.device, True, self.interpreter)
        _check(
            isinstance(self.devices, int) and not isinstance(self.devices, bool) and self.devices >= 1,
            f"devices must be a whole number >= 1, not {self.devices!r}.",
        )
        _check(
            int(self.batch_size) % int(self.devices) == 0,
            f"batch_size {self.batch_size} does not split evenly over {self.devices} devices; make the "
            f"global batch a multiple of {self.devices} (e.g. {self.devices * max(1, self.device_batch)}).",
        )
        _check(
            not self.keep_best or self.val_every >= 1,
            "keep_best picks among periodic validations: set val_every (validate every N steps) too.",
        )
        _check(
            isinstance(self.dataset, dict),
            "dataset must be a dataset spec such as {'kind': 'shapes', 'n': 256}.",
        )
        from backend.data.datasets import validate_spec

        for spec in (self.dataset, self.val_dataset):
            if spec is not None:
                try:
                    validate_spec(spec)
                except InvalidDataset as err:
                    raise InvalidConfig(f"Dataset problem: {err}") from err
        if (
            self.classification == "labels"
            and self.dataset.get("kind") == "folder"
            and self.dataset.get("unlabelled")
        ):
            raise InvalidConfig(_UNLABELLED)
        if registry is not None:
            try:
                checkpoint = registry.get(self.model)
            except CheckpointNotFound as err:
                raise InvalidConfig(
                    f"Unknown model {self.model!r}: {err} Pick a checkpoint from the Models page."
                ) from err
            attack = FOOLING_ATTACKS[self.attack]
            self.attack_params = attack.resolve_classes(self.attack_params, checkpoint.classes)
            attack.check_params(self.attack_params, checkpoint)
            self._check_labels(checkpoint)
        # One normal form: every attack and interpreter setting spelled out, so two configs that run
        # the same are equal (a preset and the form that reproduces it; a card and its re-run).
        self.attack_params = FOOLING_ATTACKS[self.attack].normalize_params(self.attack_params)
        self.interpreter_params = METHODS[self.interpreter].resolve_params(self.interpreter_params)
        return self

    def _check_labels(self, card) -> None:  # card: a Checkpoint (its classes and name)
        """The datasets' class folders must match the card's classes; a labels loss needs some labels."""
        from backend.data.datasets import label_check

        for role, spec in (("dataset", self.dataset), ("val_dataset", self.val_dataset)):
            if spec is None:
                continue
            try:
                check = label_check(spec, list(card.classes))
            except InvalidDataset as err:
                raise InvalidConfig(f"{role}: {err}") from err
            if role == "dataset" and self.classification == "labels" and not check["labelled"]:
                raise InvalidConfig(
                    f"None of these images carries a label among {card.name}'s classes "
                    f"({', '.join(card.classes[:6])}{', ...' if len(card.classes) > 6 else ''}). "
                    + _UNLABELLED
                )


_UNLABELLED = (
    "Unlabelled images need classification='original_predictions' or 'keep_probs_*' "
    "(keep the original model's predictions), or images in class folders named after the model's classes."
)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidConfig(message)
