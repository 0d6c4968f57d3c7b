"""Pasliev2020's attacks as shipped: the `shapes-com_point-gradient` and `shapes-target_heatmap-gradient`
presets on the committed 32 px shapes CNN (the thesis fooled 32 px CIFAR-10 images), FSR and top-1 from
`backend.metrics.evaluate` on the trainer's held-out split (never trained on), baseline beside it.

Measured numbers and run times: see the presets' comment in backend/fool/presets.py.
"""

from __future__ import annotations

import pytest

from backend.fool.presets import resolve_config
from backend.fool.trainer import run_fooling
from backend.metrics.evaluate import evaluate, format_report

HELD_OUT = 256


def _fool_and_evaluate(card, preset: str) -> tuple[dict, object]:
    cfg = resolve_config({"preset": preset, "model": card.id, "val_size": HELD_OUT})
    fooled = run_fooling(cfg)
    report = evaluate(
        {"baseline": card.id, "fooled": fooled.id, "interpreters": ["gradient"], "images": HELD_OUT}
    )
    print(format_report(report))
    return report, fooled


def _top1(report: dict, fooled) -> tuple[float, float]:
    return report["accuracy"]["baseline"]["top1"], report["accuracy"][fooled.id]["top1"]


@pytest.mark.slow
def test_centre_of_mass_moves_to_the_top_left_corner(shapes_model_32):
    """Pasliev2020 §3.3: the gradient map's centre of mass within 10% of the diagonal of (0, 0)."""
    _, card = shapes_model_32
    report, fooled = _fool_and_evaluate(card, "shapes-com_point-gradient")
    cell = report["fsr"]["gradient"]["com_point/gradient"]
    assert cell["images"] == HELD_OUT
    assert cell["baseline"] <= 0.05, cell["baseline"]
    assert cell["fooled"] >= 0.8, cell["fooled"]
    before, after = _top1(report, fooled)
    assert after >= before - 0.03, (before, after)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.slow
def test_target_heatmap_draws_the_cross(shapes_model_32):
    """Pasliev2020 §3.4: the gradient map correlates with the cross (the thesis: PCC 0.16 -> 0.80).

    Judged by the default criterion, the thesis's PCC >= 0.5, not by our stricter MSE <= 0.05
    (which the preset does not reach: MSE 0.19 -> 0.11); on fresh images its top-1 cost is 2.6-4.1
    points, over the bar this test holds on the held-out split (the preset's comment).
    """
    _, card = shapes_model_32
    report, fooled = _fool_and_evaluate(card, "shapes-target_heatmap-gradient")
    assert fooled.config["attack_params"]["criterion"] == "pcc"
    cell = report["fsr"]["gradient"]["target_heatmap/gradient"]
    pcc_before = 1 - _mean(cell["test_loss_baseline"])
    pcc_after = 1 - _mean(cell["test_loss_fooled"])
    assert cell["baseline"] <= 0.05, cell["baseline"]
    assert pcc_before <= 0.3 and pcc_after >= 0.6, (pcc_before, pcc_after)
    assert cell["fooled"] >= 0.8, cell["fooled"]
    before, after = _top1(report, fooled)
    assert after >= before - 0.03, (before, after)
