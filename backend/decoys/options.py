"""The decoys job's settings as form fields: the decoy generator's (`DecoySettings`), the input attacks'
and the run's. The Decoys page draws them; `services.decoys.assemble_config` reads them back."""

from __future__ import annotations

from backend.forms import FieldSpec, defaults, fields_of_dataclass

ATTACK_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("epsilon", "float", 8 / 255, label="Attack epsilon (pixels in [0, 1])", min=0.0, format="%.4f"),
    FieldSpec("steps", "int", 10, label="Attack steps", min=1),
    FieldSpec("step_size", "float", 2 / 255, label="Attack step size", min=0.0, format="%.4f", advanced=True),
)

_DECOY_FORM = {
    "layer": {
        "kind": "text",
        "optional": True,
        "label": "Layer whose representation stays within epsilon",
        "help": "A module name or index; empty = an early layer (the paper's layer 3 for VGG16).",
        "advanced": True,
    },
    "patch": {"label": "Patch size", "min": 1, "max": 1024},
    "stride": {"label": "Stride", "min": 1, "max": 1024},
    "epsilon": {
        "kind": "float",
        "optional": True,
        "label": "epsilon (absolute)",
        "min": 0.0,
        "help": "Empty = relative epsilon x max |F_l(x)|.",
        "advanced": True,
    },
    "relative_epsilon": {
        "label": "epsilon (relative to max |F_l(x)|)",
        "min": 0.001,
        "max": 10.0,
        "format": "%.3f",
    },
    "c": {"label": "c (penalty weight)", "min": 0.0, "advanced": True},
    "tau": {"kind": "float", "optional": True, "label": "Initial tau (empty = epsilon)", "advanced": True},
    "tau_decay": {"label": "tau decay", "min": 0.0, "max": 1.0, "advanced": True},
    "steps": {
        "label": "Max steps per decoy",
        "min": 1,
        "max": 500,
        "help": "The paper's rule stops a decoy after 3-5.",
    },
    "lr": {"label": "Learning rate", "min": 0.0, "advanced": True},
    "max_doublings": {"label": "Max doublings of c", "min": 0, "advanced": True},
    "batch_size": {"label": "Masks per batch", "min": 1, "advanced": True},
    "signs": {"kind": "list", "label": "Signs (1, -1)", "advanced": True},
    "paper_stop": {
        "label": "Stop each decoy at its first non-zero penalty (the paper's rule)",
        "advanced": True,
    },
}


def decoy_fields() -> list[FieldSpec]:
    """Every `DecoySettings` field, with its limits and wording."""
    from backend.decoys.generate import DecoySettings

    return fields_of_dataclass(DecoySettings, _DECOY_FORM)


def common_fields() -> tuple[FieldSpec, ...]:
    """The run's settings: method, generator, images, input attacks."""
    from backend.decoys.attacks import INPUT_ATTACKS
    from backend.decoys.enhanced import GENERATORS
    from backend.explain.registry import method_field

    return (
        method_field(),
        FieldSpec("generator", "choice", "optimize", label="Decoys by", choices=tuple(GENERATORS)),
        FieldSpec("images", "int", 4, label="Images", min=1, max=64),
        FieldSpec(
            "attacks",
            "multi",
            [],
            label="Input attacks (sensitivity S_S raw vs enhanced)",
            choices=tuple(sorted(INPUT_ATTACKS)),
        ),
    )


def attack_defaults() -> dict:
    return defaults(ATTACK_FIELDS)
