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


def test_active_on_images_without_two_object_pairs_says_so(shapes_model):
    _, card = shapes_model
    fooled = run_fooling(
        {
            "model": card.id,
            "dataset": {"kind": "shapes", "n": 40, "seed": 2, "pair": ["circle", "triangle"]},
            "attack": "active",
            "attack_params": {"c1": "circle", "c2": "triangle", "images": "unlabelled"},
            "steps": 2,
            "batch_size": 8,
            "lr": 1e-3,
        }
    )
    assert fooled.metrics["val_fsr_images"] > 0 and fooled.metrics["val_fsr"] is not None
    report = evaluate(
        {"baseline": card.id, "fooled": fooled.id, "dataset": {"kind": "shapes", "n": 16, "seed": 3}},
        registry=Registry(),
    )
    cell = report["fsr"]["gradcam"]["active/gradcam"]
    assert cell["fooled"] is None and cell["baseline"] is None and cell["images"] == 0
    text = format_report(report)
    assert "nan" not in text and "no FSR: none of these images is one of the unlabelled two-object" in text
    # only two-object images: an FSR, but no labelled image of either class for the per-class accuracy
    pairs = {"kind": "shapes", "n": 8, "seed": 3, "pair": ["circle", "triangle"], "pair_fraction": 1.0}
    report = evaluate({"baseline": card.id, "fooled": fooled.id, "dataset": pairs}, registry=Registry())
    assert report["fsr"]["gradcam"]["active/gradcam"]["images"] == 8
    text = format_report(report)
    assert "nan" not in text and "class 0: n/a (no labelled image of it)" in text


def test_one_map_per_method_what_is_optimised_is_what_detection_and_inspect_see(shapes_model):
    """Gradient-family maps are the thesis's sum over channels of |g_c| (max-scaled); layer maps and LRP
    are clipped and max-scaled. The fooling interpreter, detection and Inspect all draw that map."""
    import torch

    from backend.data.shapes import make_shapes
    from backend.detect.heatmaps import scaled_heatmaps
    from backend.explain import explain
    from backend.explain.normalize import method_map
    from backend.fool.objective import Interpreter
    from backend.models.preprocessing import Preprocessing

    model, card = shapes_model
    x = Preprocessing.from_dict(card.preprocessing).normalize(make_shapes(4, 64, seed=5)[0])
    for method in ("gradient", "gradcam", "lrp"):
        ex = explain(model, x, None, method)
        expected = method_map(ex.heatmap, ex.native, method)
        if method == "gradient":
            thesis = ex.native.abs().sum(1)
            assert torch.allclose(expected, thesis / thesis.flatten(1).max(1).values.view(-1, 1, 1))
            assert not torch.allclose(
                expected, ex.heatmap.abs() / ex.heatmap.abs().amax((1, 2), keepdim=True)
            )
        else:
            clipped = ex.heatmap.clamp_min(0)
            assert torch.allclose(expected, clipped / clipped.amax((1, 2), keepdim=True))
        fooled_map, _ = Interpreter(method, {}).heatmaps(model, x, [ex.target], create_graph=False)
        assert torch.allclose(fooled_map[0], expected, atol=1e-6)
        assert torch.allclose(scaled_heatmaps(model, x, ex.target, method), expected, atol=1e-6)
