"""End-to-end fooling of the shapes CNN on the CPU: the papers' claims, measured on held-out images.

Each run uses a `shapes-*` preset; FSR and accuracy come from `backend.metrics.evaluate` on the
trainer's held-out split (never trained on), with the baseline model's FSR on the same images beside it.
"""

from __future__ import annotations

import pytest

from backend.fool.presets import PRESETS, resolve_config
from backend.fool.trainer import run_fooling
from backend.metrics.evaluate import evaluate, format_report

HELD_OUT = 256


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _fool_and_evaluate(
    card, preset: str, interpreters: list[str], evaluation: dict | None = None, **overrides
) -> tuple[dict, object]:
    """Fool with a preset, then evaluate on the run's held-out split (or on `evaluation`'s images)."""
    cfg = resolve_config({"preset": preset, "model": card.id, "val_size": HELD_OUT, **overrides})
    fooled = run_fooling(cfg)
    spec = {"baseline": card.id, "fooled": fooled.id, "interpreters": interpreters, "images": HELD_OUT}
    if evaluation is not None:
        spec.update(dataset=evaluation, images=evaluation["n"])
    report = evaluate(spec)
    print(format_report(report))
    return report, fooled


# (attack, interpreter): the bar is FSR >= 0.8 on held-out images, top-1 drop <= 3 points, the
# baseline far lower. Measured on the 2-core CPU with the average-pooled shapes CNN (seed 0), fooled
# FSR (baseline FSR): see each preset's comment in backend/fool/presets.py.
PASSIVE = [
    ("location", "gradcam"),
    ("location", "lrp_t"),
    ("topk", "gradcam"),
    ("topk", "lrp_t"),
    ("center_mass", "gradcam"),
    ("center_mass", "lrp_t"),
]
FSR_FLOOR = 0.8


@pytest.mark.slow
@pytest.mark.parametrize(("attack", "interpreter"), PASSIVE)
def test_passive_fooling_reaches_the_papers_fsr_on_held_out_images(shapes_model, attack, interpreter):
    _, card = shapes_model
    report, fooled = _fool_and_evaluate(card, f"shapes-{attack}-{interpreter}", [interpreter])
    cell = report["fsr"][interpreter][f"{attack}/{interpreter}"]
    assert fooled.parent == card.id and fooled.kind == "fooled" and fooled.config["attack"] == attack
    assert cell["fooled"] >= FSR_FLOOR, cell["fooled"]
    assert cell["baseline"] <= cell["fooled"] - 0.5, (cell["baseline"], cell["fooled"])
    top1_before = report["accuracy"]["baseline"]["top1"]
    top1_after = report["accuracy"][fooled.id]["top1"]
    assert top1_after >= top1_before - 0.03, (top1_before, top1_after)


@pytest.mark.slow
def test_keep_probabilities_keeps_the_probabilities(shapes_model):
    """Measured: probability MSE 0.006, mean Location test loss 0.65 -> 0.53 (lam 0.5, 100 steps)."""
    _, card = shapes_model
    report, fooled = _fool_and_evaluate(
        card, "shapes-location-gradcam", ["gradcam"], classification="keep_probs_mse", steps=100, lam=0.5
    )
    cell = report["fsr"]["gradcam"]["location/gradcam"]
    assert report["accuracy"][fooled.id]["probability_mse"] < 0.01
    assert _mean(cell["test_loss_fooled"]) <= _mean(cell["test_loss_baseline"]) - 0.05, cell


# Heo's setting: the swap is trained and measured on images that show both classes (here a circle and a
# triangle side by side, unlabelled), c1/c2 accuracy on the ~100 single-object images of each class in
# the same fresh set. Measured FSR and accuracy: see the preset in backend/fool/presets.py. The preset's
# lambda schedule and steps as shipped, its training set drawn with 8,192 images instead of 32,768 (the
# full set takes 25 s to draw against 4 s, and 1.75 GB; benchmarks/active_seeds.py runs the
# preset whole on three models, this fixture among them).
ACTIVE_EVAL = {"kind": "shapes", "n": 1000, "seed": 99, "pair": [0, 2], "pair_fraction": 0.5}


@pytest.mark.slow
def test_active_fooling_swaps_the_two_classes_explanations(shapes_model):
    _, card = shapes_model
    dataset = {**PRESETS["shapes-active-gradcam"]["config"]["dataset"], "n": 8192}
    report, fooled = _fool_and_evaluate(
        card, "shapes-active-gradcam", ["gradcam"], ACTIVE_EVAL, dataset=dataset
    )
    cell = report["fsr"]["gradcam"]["active/gradcam"]
    assert len(cell["test_loss_fooled"]) == 500  # the two-object images only
    assert cell["fooled"] >= 0.8, cell["fooled"]
    assert cell["baseline"] <= 0.05, cell["baseline"]
    per_class = report["accuracy"][fooled.id]["per_class"]
    for c in (0, 2):
        assert per_class["fooled"][c] >= per_class["baseline"][c] - 0.05, per_class
