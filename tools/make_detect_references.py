"""Write assets/detect_references.json: the detection tests' numbers on clean built-in models.

A report card without a clean twin compares the suspect with these (`backend.detect.references`).
Measured with the detect job's defaults (its images, noise inputs, weight-noise sweep, randomisation):

    FOOLING_LAB_MODELS=/tmp/r FOOLING_LAB_DATA=/tmp/r python tools/make_detect_references.py [METHOD ...]

Models: the shapes CNN of tests/assets (seed 0); `--lite0` adds EfficientNet-Lite0 (minutes on a CPU).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _shapes_card():
    from safetensors.torch import load_file

    from backend.data.shapes import SHAPE_CLASSES
    from backend.models import zoo
    from backend.models.registry import Registry

    model = zoo.build("shapes_cnn", len(SHAPE_CLASSES))
    model.load_state_dict(load_file(ROOT / "tests" / "assets" / "shapes_cnn_seed0.safetensors"))
    return Registry().save(
        model.eval(), name="shapes CNN seed 0 (tests/assets)", architecture="shapes_cnn",
        classes=list(SHAPE_CLASSES), preprocessing=zoo.spec("shapes_cnn").preprocessing, kind="trained",
    )  # fmt: skip


def main(argv: list[str]) -> int:
    from backend.detect.inputs import input_shape, load_checkpoint, load_images
    from backend.detect.job import _validate, measure
    from backend.detect.references import SHIPPED, save_reference
    from backend.models.registry import Registry

    methods = [a for a in argv if not a.startswith("--")] or ["gradient"]
    cards = [_shapes_card()]
    if "--lite0" in argv:
        registry = Registry()
        registry.ensure_builtin()
        cards.append(next(c for c in registry.list() if c.architecture == "efficientnet_lite0"))
    for card in cards:
        for method in methods:
            cfg = _validate(
                {
                    "suspect": card.id,
                    "method": method,
                    "tests": ["noise_inputs", "weight_noise", "randomization"],
                }
            )
            model, _, pre = load_checkpoint(card.id, "cpu")
            x, labels = load_images(cfg["dataset"], pre, int(cfg["images"]), "cpu", list(card.classes))
            results, _ = measure(model, x, labels, input_shape(pre), cfg, None, lambda *a: None)
            source = f"{card.name}, {len(x)} images of {cfg['dataset']['kind']}, detect job defaults"
            save_reference(card.architecture, method, results, source, path=SHIPPED)
            print(f"{card.architecture}/{method}: {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
