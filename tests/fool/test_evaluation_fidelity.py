"""Evaluation measures what was trained: the run's own interpreter, ReLU maps, honest image counts."""

from __future__ import annotations

import pytest

from backend.fool.config import FoolConfig
from backend.fool.trainer import run_fooling
from backend.metrics.evaluate import evaluate, format_report, judging_interpreter
from backend.models.registry import Registry


def test_the_judging_interpreter_is_the_runs_own_with_relu_maps():
    fc = FoolConfig.from_dict(
        {
            "model": "m",
            "dataset": {"kind": "shapes"},
            "interpreter": "lrp_t",
            "interpreter_params": {"composite": "zbox_zplus", "upsample": "nearest"},
            "layer": "features.13",
            "normalization": "minmax",
            "softplus_beta": 20.0,
        }
    )
    same = judging_interpreter(fc, "lrp_t")
    assert same.params == {"composite": "zbox_zplus", "upsample": "nearest"}
    assert (same.layer, same.normalization, same.softplus_beta) == ("features.13", "minmax", None)
    other = judging_interpreter(fc, "gradcam")
    assert (other.params, other.layer, other.normalization) == ({}, "features.13", None)
    assert judging_interpreter(fc, "gradient").layer is None


def test_evaluation_reproduces_the_cards_numbers_with_the_runs_interpreter(shapes_model):
    """A run at a non-default layer with softplus: the card holds ReLU numbers (and softplus ones), and
    evaluate() on the run's report images, rebuilding the same interpreter, gives the card's FSR."""
    _, card = shapes_model
    cfg = {
        "model": card.id,
        "dataset": {"kind": "shapes", "n": 96, "seed": 4},
        "attack": "location",
        "interpreter": "gradcam",
        "interpreter_params": {"upsample": "nearest"},
        "layer": "features.13",
        "softplus_beta": 5.0,
        "steps": 6,
        "batch_size": 16,
        "lr": 3e-3,
        "lam": 5.0,
        "val_size": 19,
    }
    fooled = run_fooling(cfg)
    m = fooled.metrics
    assert m["val_maps"] == "relu" and "val_fsr_softplus" in m and "val_test_loss_softplus" in m
    assert m["val_test_loss_softplus"] != pytest.approx(m["val_test_loss"], abs=1e-6)
    assert (m["val_report_images"], m["val_held_out"], m["val_select_images"]) == (19, 19, 0)
    report = evaluate(
        {"baseline": card.id, "fooled": fooled.id, "interpreters": ["gradcam"], "images": 100},
        registry=Registry(),
    )
    cell = report["fsr"]["gradcam"]["location/gradcam"]
    assert report["images"] == 19 and report["available"] == 19
    assert sum(cell["test_loss_fooled"]) / 19 == pytest.approx(m["val_test_loss"], rel=1e-5)
    assert cell["fooled"] == pytest.approx(m["val_fsr"])
    assert "Images: 19 from the first fooled run's held-out images" in format_report(report)
