"""FoolConfig: everything one fooling run needs, as a dataclass that round-trips through JSON.

`validate()` refuses a config before anything is queued, with a message that says what to change.
The objective is L = L_C + lam * L_F (Krishna2021 eq. 2). Note the thesis (Pasliev2020) writes
lam*L_C + (1-lam)*L_M; its presets are converted to our form in `presets.py`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from backend.devices import HELP as DEVICES_HELP
from backend.devices import check_split, take_world_size
from backend.errors import CheckpointNotFound, InvalidConfig, InvalidDataset
from backend.limits import check_limits, setting

CLASSIFICATION_TERMS = ("labels", "original_predictions", "keep_probs_mse", "keep_probs_kl")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
# how and where a run runs, not what it computes: a resumable state need not agree on these
RUNTIME_SETTINGS = frozenset(
    {"device", "devices", "num_workers", "state_every_s", "checkpoint_every", "name"}
)


def _attacks() -> tuple[str, ...]:
    from backend.fool.losses import FOOLING_ATTACKS  # the registry (torch): read when a config is checked

    return tuple(FOOLING_ATTACKS)


def _methods() -> tuple[str, ...]:
    from backend.explain import METHODS

    return tuple(METHODS)


def _normalizers() -> tuple[str, ...]:
    from backend.explain.normalize import NORMALIZERS

    return tuple(NORMALIZERS)


@dataclass
class FoolConfig:
    """One fooling run. Each setting declares its limits and help (`backend.limits.setting`): `validate`
    checks them in one loop and the Fool form builds its inputs from them (`limits_of(FoolConfig)`)."""

    model: str = setting(help="checkpoint id in the registry (the parent of the fooled model)")
    dataset: dict[str, Any] = setting(help="a backend.data.datasets spec: the images the attack trains on")
    attack: str = setting("location", choices=_attacks, help="how the explanation is manipulated")
    attack_params: dict[str, Any] = setting(default_factory=dict, help="the attack's own settings")
    interpreter: str = setting(
        "gradcam",
        choices=_methods,
        label="explanation method",
        help="the explanation method the loss is written with (a differentiable one)",
    )
    interpreter_params: dict[str, Any] = setting(default_factory=dict, help="the method's parameters")
    layer: str | None = setting(None, help="target layer of layer-based methods; empty = the model's default")
    normalization: str | None = setting(
        None,
        choices=_normalizers,
        label="normalisation",
        help="map normalisation before the loss; empty = the paper's for the interpreter",
    )
    lam: float = setting(1.0, min=0, label="lambda", help="weight of the fooling term: L = L_C + lambda L_F")
    lam_start: float | None = setting(
        None,
        min=0,
        label="lambda at the start",
        help="lambda for the first lam_start_steps steps, then lam: a large one finds a hard manipulation "
        "(Active's swap on some models), the smaller one keeps it while the accuracy recovers; empty = lam",
    )
    lam_start_steps: int = setting(0, min=0, integer=True, help="how many steps use lam_start")
    classification: str = setting(
        "labels", choices=CLASSIFICATION_TERMS, help="what keeps the predictions (L_C)"
    )
    val_dataset: dict[str, Any] | None = setting(None, help="held-out images; empty = a split of dataset")
    val_fraction: float = setting(
        0.2,
        min=0,
        max=1,
        min_exclusive=True,
        max_exclusive=True,
        help="share of dataset held out when val_dataset is empty",
    )
    val_every: int = setting(0, min=0, integer=True, help="validate every N steps (0 = only at the end)")
    val_size: int = setting(64, min=1, integer=True, help="held-out images used by each validation")
    keep_best: bool = setting(
        False,
        help="end with the weights of the best periodic validation (highest FSR, then agreement) instead "
        "of the last step's: some attacks peak and fall back (centre-mass on full LRP). Needs val_every; "
        "the validation images then also chose the weights, so judge the result on other images.",
    )
    max_accuracy_drop: float | None = setting(
        None,
        min=0,
        max=1,
        help="keep_best: validations whose accuracy fell at most this far below the original's (a share: "
        "0.03 = 3 points; Active: c1's and c2's own accuracy, else top-1) beat all others; empty = no limit",
    )
    optimizer: str = setting("adam", choices=OPTIMIZERS)
    lr: float = setting(1e-6, min=0, min_exclusive=True, label="lr (the learning rate)")
    weight_decay: float = setting(0.0, min=0, help="L2 weight decay of the optimiser")
    momentum: float = setting(0.9, min=0, max=1, help="SGD momentum (the other optimisers ignore it)")
    batch_size: int = setting(8, min=1, integer=True)
    steps: int | None = setting(
        None, min=1, integer=True, help="optimisation steps; empty = epochs passes over the training images"
    )
    epochs: int = setting(1, min=1, integer=True)
    grad_clip: float | None = setting(
        None, min=0, min_exclusive=True, help="max gradient norm; empty = no clipping"
    )
    lr_schedule: str = setting(
        "constant", choices=LR_SCHEDULES, help="cosine: decay to 0 over the run (lets accuracy settle)"
    )
    freeze_classifier: bool = setting(False, help="keep the last Linear layer(s) fixed (Pasliev2020 §3.7)")
    train_first_n: int | None = setting(
        None, min=1, integer=True, help="train only the first N parameterised layers; empty = all"
    )
    freeze_batchnorm: bool = setting(
        True, help="BatchNorm uses its running statistics (eval mode), as the original code"
    )
    softplus_beta: float | None = setting(
        None,
        min=0,
        min_exclusive=True,
        help="softplus(beta) instead of ReLU while training (Pasliev2020 uses 20)",
    )
    mixed_precision: bool = setting(
        False,
        help="fp16 autocast + GradScaler on CUDA, bf16 autocast on the CPU (refused for interpreters "
        "whose maps bf16 breaks: see backend.fool.precision)",
    )
    seed: int = setting(0, min=0, integer=True)
    state_every_s: float = setting(
        600.0,
        min=0,
        min_exclusive=True,
        help="write resumable state (when a state_dir is given) every this many seconds, at the end, "
        "and, if set, every checkpoint_every steps; a background thread writes it",
    )
    checkpoint_every: int | None = setting(
        None, min=1, integer=True, help="also write resumable state every N steps; empty = by time only"
    )
    name: str | None = setting(None, help="name of the fooled checkpoint")
    device: str | None = setting(None, help="empty = settings.device")
    devices: int = setting(
        1,
        min=1,
        integer=True,
        help=DEVICES_HELP,
    )
    num_workers: int | None = setting(
        None,
        min=0,
        integer=True,
        help="image-decoding worker processes (0 = in the training process); empty = from the CPU count",
    )

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
        data = take_world_size(data)  # torch.distributed's word for devices
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

    def lam_at(self, step: int) -> float:
        """lambda of the step after `step` steps: lam_start during the first lam_start_steps, then lam."""
        if self.lam_start is not None and step < self.lam_start_steps:
            return float(self.lam_start)
        return float(self.lam)

    def total_steps(self, n_train: int) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, self.epochs * -(-n_train // self.batch_size))

    def validate(self, registry=None) -> FoolConfig:
        """Check every setting against its declared limits, then what involves several settings; with a
        registry also that the model exists and the attack fits it. Returns self."""
        from backend.explain import METHODS
        from backend.fool.losses import FOOLING_ATTACKS

        check_limits(self)
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
        if self.mixed_precision and self.device:  # else the worker's device decides, when it runs
            from backend.fool.precision import precision_for

            precision_for(self.device, True, self.interpreter)
        check_split(self.batch_size, self.devices)
        if self.keep_best and self.val_every < 1:
            raise InvalidConfig(
                "keep_best picks among periodic validations: set val_every (validate every N steps) too."
            )
        if not isinstance(self.dataset, dict):
            raise InvalidConfig("dataset must be a dataset spec such as {'kind': 'shapes', 'n': 256}.")
        from backend.data.datasets import check_specs

        check_specs(self.dataset, self.val_dataset)
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
