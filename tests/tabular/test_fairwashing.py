"""The issue's bars, end to end: a model that uses a protected attribute is fooled so that its chart hides
it, and the report card catches the lie. Fast on the synthetic set (planted truth), slow on Adult."""

from __future__ import annotations

import pytest

from backend.tabular.report import HIDDEN_FRACTION


def check_bars(models: dict, attributes: list[str]) -> dict:
    """The bars of issue 14; returns the numbers for the test's report."""
    base, fooled, report = models["baseline"], models["fooled"], models["report"]
    m = fooled.metrics
    before, after = m["protected_share_before"], m["protected_share"]
    # the chart before: the protected attributes carry a visible share of Gradient importance
    assert before >= 0.10, before
    # after the attack: their share drops by >= 90% ...
    assert after <= 0.10 * before, (before, after)
    # ... while test accuracy stays within 1 point and >= 97% of test decisions agree
    assert abs(m["test_accuracy"] - base.metrics["test_accuracy"]) <= 0.01, m
    assert m["agreement"] >= 0.97, m
    assert m["fsr"] > m["fsr_before"]
    # the model still uses them: counterfactual flip rates within 20% (relative) of the baseline's
    b, s = report["baseline"]["flips"], report["suspect"]["flips"]
    for name in attributes:
        assert b[name]["flip_rate"] >= 0.02, (name, b[name])
        assert abs(s[name]["flip_rate"] - b[name]["flip_rate"]) <= 0.2 * b[name]["flip_rate"], (name, b, s)
    # and the report card catches it
    card = report["report"]
    assert (
        card["hides"]
        and report["suspect"]["importance"]["gradient"]["protected_share"]
        < HIDDEN_FRACTION * (report["baseline"]["importance"]["gradient"]["protected_share"])
    )
    assert {f"counterfactual/{name}" for name in attributes} <= set(card["flagged_by"]), card["summary"]
    top = max(attributes, key=lambda k: s[k]["flip_rate"])
    assert f"flipping {top} changes {100 * s[top]['flip_rate']:.1f}% of the decisions" in card["headline"]
    return {
        "accuracy": (
            base.metrics["test_accuracy"],
            models["without"].metrics["test_accuracy"],
            m["test_accuracy"],
        ),
        "share": (before, after),
        "flips": {k: (b[k]["flip_rate"], s[k]["flip_rate"]) for k in attributes},
        "agreement": m["agreement"],
    }


def test_synthetic_model_uses_the_planted_group_and_hides_it(synthetic_models):
    numbers = check_bars(synthetic_models, ["group"])
    report = synthetic_models["report"]
    # the planted truth: without `group` the same net is clearly worse, and the pure-noise x4 matters least
    assert numbers["accuracy"][0] - numbers["accuracy"][1] >= 0.05, numbers
    numeric = {
        k: v for k, v in report["baseline"]["importance"]["gradient"]["groups"].items() if k.startswith("x")
    }
    assert min(numeric, key=numeric.get) == "x4", numeric
    assert "accuracy_gap" in report["report"]["flagged_by"]
    print(f"\nsynthetic: {numbers}")


def test_the_report_shows_every_method_and_the_decisions_fairness(synthetic_models):
    report = synthetic_models["report"]
    for role in ("baseline", "suspect"):
        assert set(report[role]["importance"]) == {
            "gradient", "grad_x_input", "integrated_gradients", "smoothgrad", "lrp", "occlusion",
        }  # fmt: skip
        for imp in report[role]["importance"].values():
            assert sum(imp["groups"].values()) == pytest.approx(1.0, abs=1e-4)
    fair_b, fair_s = report["baseline"]["fairness"]["group"], report["suspect"]["fairness"]["group"]
    assert fair_b["dp_difference"] > 0.2  # group b is favoured by construction
    assert fair_s["dp_difference"] == pytest.approx(fair_b["dp_difference"], abs=0.05)
    # the reference model has no protected input, yet its decisions still get the fairness measures
    assert report["without"]["protected_inputs"] == [] and "group" in report["without"]["fairness"]
    assert (
        report["suspect"]["noise_inputs"]["n"] == 64 and len(report["suspect"]["weight_noise"]["rows"]) == 12
    )


def test_the_thesis_target_attack_runs_as_written(synthetic_models):
    """Pasliev2020 §3.8 mechanics: MSE to the original map with the protected columns zeroed, CE on the
    labels."""
    import torch

    from backend.tabular.attack import run_tabular_fooling, target_maps

    h0 = torch.tensor([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    assert torch.allclose(
        target_maps(h0, torch.tensor([False, False, True])), torch.tensor([[5 / 7, 2 / 7, 0], [0.5, 0.5, 0]])
    )
    base = synthetic_models["baseline"]
    card = run_tabular_fooling({"preset": "thesis-target", "model": base.id, "epochs": 3, "lam": 100.0})
    assert card.config["attack"] == "target" and card.config["classification"] == "labels"
    assert card.metrics["protected_share"] < 0.8 * card.metrics["protected_share_before"], card.metrics
    assert card.parent == base.id and card.kind == "fooled"


@pytest.mark.slow
def test_adult_as_in_the_thesis(adult_models):
    """Pasliev2020 §3.8: 83.4% with race and gender, 82.1% without, 82.7% after the manipulation."""
    numbers = check_bars(adult_models, ["race", "sex"])
    acc_with, acc_without, acc_fooled = numbers["accuracy"]
    assert acc_with >= 0.82 and acc_with > acc_without
    print(f"\nAdult (thesis: 83.4 / 82.1 / 82.7): {numbers}")
    print(adult_models["report"]["report"]["headline"])
