"""The detect job's settings as form fields: the tests it runs and each test's own settings.

The Detect page draws these (`pages/_form.py`) and `services.detect.assemble_config` reads them back;
the job kind's defaults are the fields' defaults, so a new setting is declared once, here.
"""

from __future__ import annotations

from backend.detect.weight_noise import MODES
from backend.forms import FieldSpec, defaults

TESTS = ("noise_inputs", "weight_noise", "randomization", "reference")
TEST_LABELS = {
    "noise_inputs": "Noise inputs (Pasliev2020 §4)",
    "weight_noise": "Weight noise (Pasliev2020 §4)",
    "randomization": "Cascading randomisation",
    "reference": "Similarity to the reference's maps",
}

TEST_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "noise_inputs": (
        FieldSpec("n", "int", 16, label="Noise images", min=2, max=1024),
        FieldSpec("std", "float", 1.0, label="Noise std (normalised units)", min=0.0, advanced=True),
        FieldSpec("seed", "int", 0, label="Seed", min=0, advanced=True),
    ),
    "weight_noise": (
        FieldSpec(
            "sigmas",
            "list",
            [0.0, 0.005, 0.01, 0.02, 0.05],
            label="Weight-noise sigmas",
            min=0.0,
            help="Noise levels to sweep (std of the added noise, or of the factor with 'multiplicative').",
        ),
        FieldSpec("seeds", "list", [0, 1, 2], label="Seeds per sigma", min=0),
        FieldSpec("mode", "choice", "additive", label="Noise", choices=MODES),
        FieldSpec(
            "select",
            "names",
            None,
            optional=True,
            label="Only parameters starting with",
            help="Comma-separated name prefixes (e.g. features.0); empty = all parameters.",
            advanced=True,
        ),
    ),
    "randomization": (
        FieldSpec("images", "int", 8, label="Images randomised", min=1),
        FieldSpec("seed", "int", 0, label="Seed", min=0, advanced=True),
    ),
    "reference": (),
}


def common_fields() -> tuple[FieldSpec, ...]:
    """The settings every detection run has: the explanation method, the tests, the images."""
    from backend.explain.registry import method_field

    return (
        method_field(),
        FieldSpec("tests", "multi", list(TESTS), label="Tests", choices=TESTS, labels=TEST_LABELS),
        FieldSpec("images", "int", 32, label="Images", min=1, max=512),
    )


def test_defaults() -> dict[str, dict]:
    """Each test's settings at their defaults (the job kind's DEFAULTS)."""
    return {test: defaults(fields) for test, fields in TEST_FIELDS.items() if fields}
