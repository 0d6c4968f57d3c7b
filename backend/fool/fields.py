"""FoolConfig as form fields: every setting of a fooling run, so a form can reach all of them.

Limits, choices and help come from the dataclass fields' metadata where they declare them; the
wording, grouping (common up front, the rest "advanced") and the choices that live in registries
(attacks, interpreters, normalisations) are added here. The fields a form draws in its own way
(`model`, `dataset`, `attack_params`, `interpreter_params`) are not among them: the attack's and the
interpreter's own fields stand in for the last two.
"""

from __future__ import annotations

from typing import Any

from backend import devices
from backend.forms import FieldSpec, fields_of_dataclass

DRAWN_ELSEWHERE = ("model", "dataset", "attack_params", "interpreter_params")


def _overrides() -> dict[str, dict[str, Any]]:
    from backend.explain import METHODS
    from backend.explain.normalize import NORMALIZERS
    from backend.fool.config import CLASSIFICATION_TERMS, LR_SCHEDULES, OPTIMIZERS
    from backend.fool.losses import FOOLING_ATTACKS

    usable = tuple(n for n, m in METHODS.items() if m.differentiable)
    adv = {"advanced": True}
    return {
        "attack": {
            "label": "Attack",
            "choices": tuple(FOOLING_ATTACKS),
            "labels": {n: a.label for n, a in FOOLING_ATTACKS.items()},
        },
        "interpreter": {
            "label": "Interpreter in the loss",
            "choices": usable,
            "labels": {n: METHODS[n].label for n in usable},
            "help": "The explanation method the attack fools (it must be differentiable).",
        },
        "layer": {
            "kind": "layer",
            "label": "Target layer",
            "help": "Layer-based interpreters (Grad-CAM, LRP_T, Gradient_T) read this layer.",
            **adv,
        },
        "normalization": {
            "kind": "choice",
            "choices": tuple(NORMALIZERS),
            "optional": True,
            "label": "Normalisation of the map before the loss",
            "help": "Empty = the paper's choice for the interpreter (clip + min-max for LRP_T and "
            "Grad-CAM, min-max otherwise).",
            **adv,
        },
        "lam": {"label": "lambda (fooling weight)", "min": 0.0, "format": "%.4g"},
        "lam_start": {
            "kind": "float",
            "optional": True,
            "label": "lambda for the first steps",
            "min": 0.0,
            "format": "%.4g",
            "help": "Empty = lambda throughout. A larger one finds a hard manipulation (Active's swap on "
            "some models); lambda then keeps it while the accuracy recovers.",
            **adv,
        },
        "lam_start_steps": {"label": "Steps with that lambda", "min": 0, **adv},
        "classification": {
            "choices": CLASSIFICATION_TERMS,
            "label": "Classification term",
            "labels": {
                "labels": "Cross-entropy on the labels",
                "original_predictions": "Cross-entropy on the original's predictions",
                "keep_probs_mse": "Keep the original probabilities (MSE, Pasliev2020 §3.5)",
                "keep_probs_kl": "Keep the original probabilities (KL)",
            },
        },
        "val_dataset": {
            "kind": "json",
            "label": "Held-out images (a dataset spec as JSON)",
            "help": 'Empty = a split of the training images; e.g. {"kind": "shapes", "n": 512, "seed": 9}.',
            **adv,
        },
        "val_fraction": {"label": "Held-out share of the images", "min": 0.01, "max": 0.99, **adv},
        "val_every": {"label": "Validate every N steps (0 = only at the end)", "min": 0},
        "val_size": {"label": "Images per periodic validation", "min": 1, **adv},
        "keep_best": {
            "label": "Keep the best validated weights",
            "help": "End with the weights of the validation with the highest FSR (then agreement), not "
            "the last step's: some attacks peak and fall back. Needs periodic validation.",
        },
        "max_accuracy_drop": {
            "kind": "float",
            "optional": True,
            "label": "Keep only weights whose accuracy fell at most (share)",
            "min": 0.0,
            "max": 1.0,
            "help": "With 'Keep the best': validations within this accuracy loss (0.03 = 3 points; "
            "Active: each of its two classes' own accuracy) come first, then the highest FSR; when none is "
            "within it, the weights that lost least accuracy.",
            **adv,
        },
        "optimizer": {"choices": OPTIMIZERS, "label": "Optimizer", **adv},
        "lr": {"label": "Learning rate", "min": 0.0, "format": "%.2e"},
        "weight_decay": {"label": "Weight decay", "min": 0.0, "format": "%.2e", **adv},
        "momentum": {"label": "Momentum (SGD)", "min": 0.0, "max": 1.0, **adv},
        "batch_size": {"label": "Batch size", "min": 1},
        "steps": {
            "kind": "int",
            "optional": True,
            "label": "Steps",
            "min": 1,
            "help": "Optimisation steps; empty = 'Epochs' passes over the training images.",
        },
        "epochs": {"label": "Epochs (when Steps is empty)", "min": 1, **adv},
        "grad_clip": {
            "kind": "float",
            "optional": True,
            "label": "Clip the gradient norm at",
            "min": 0.0,
            "help": "Empty = no clipping.",
            **adv,
        },
        "lr_schedule": {
            "choices": LR_SCHEDULES,
            "label": "Learning-rate schedule",
            "labels": {"constant": "Constant", "cosine": "Cosine decay to 0"},
            **adv,
        },
        "freeze_classifier": {"label": "Freeze the classifier (Pasliev2020 §3.7)", **adv},
        "train_first_n": {
            "kind": "int",
            "optional": True,
            "label": "Train only the first N layers",
            "min": 1,
            "help": "Empty = all layers.",
            **adv,
        },
        "freeze_batchnorm": {
            "label": "BatchNorm on running statistics (eval mode)",
            "help": "As the original code; off = BatchNorm trains in train mode.",
            **adv,
        },
        "softplus_beta": {
            "kind": "float",
            "optional": True,
            "label": "Softplus beta (empty = ReLU)",
            "min": 0.0,
            "help": "Train through softplus(beta) instead of ReLU (Pasliev2020 uses 20): second derivatives "
            "of ReLU networks are zero, which stalls gradient-type attacks.",
        },
        "mixed_precision": {
            "label": "Mixed precision (fp16 on CUDA, bf16 on the CPU)",
            "help": "Autocast with loss scaling on a GPU; bf16 on the CPU is refused for interpreters "
            "whose maps it breaks.",
            **adv,
        },
        "seed": {"label": "Seed", "min": 0, **adv},
        "state_every_s": {
            "label": "Save resumable state every N seconds",
            "min": 1.0,
            "help": "Also at the end; a background thread writes it, the run only copies it.",
            **adv,
        },
        "checkpoint_every": {
            "kind": "int",
            "optional": True,
            "label": "Also save resumable state every N steps",
            "min": 1,
            "help": "Empty = by time only.",
            **adv,
        },
        "name": {
            "kind": "text",
            "optional": True,
            "label": "Name of the fooled checkpoint",
            "help": "Empty = '<base> fooled <attack>/<interpreter>'.",
        },
        "device": {
            "kind": "text",
            "optional": True,
            "label": "Device",
            "help": "Empty = the worker's device; e.g. cpu, cuda, cuda:1.",
            **adv,
        },
        "devices": {"label": devices.LABEL, "min": 1, "help": devices.FORM_HELP, **adv},
        "num_workers": {
            "kind": "int",
            "optional": True,
            "label": "Image-decoding workers",
            "min": 0,
            "help": "DataLoader worker processes; empty = from the CPU count (none for shapes).",
            **adv,
        },
    }


def config_fields() -> list[FieldSpec]:
    """Every FoolConfig setting a form shows as a field, in the dataclass's order."""
    from backend.fool.config import FoolConfig

    return fields_of_dataclass(FoolConfig, _overrides(), skip=DRAWN_ELSEWHERE)
