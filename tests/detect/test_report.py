"""The report card: thresholds come from the baseline's numbers, and a non-separating test says so."""

from __future__ import annotations

import pytest

from backend.detect.report import report_card


def _noise(pcc):
    return {"pcc_mean": pcc, "pcc_std": 0.05, "ssim_mean": pcc, "pairs": 10}


def _sweep(agreement, pcc, spread=0.02):
    return {
        "curve": {
            "sigma": [0.0, 0.01, 0.02],
            "agreement": agreement,
            "agreement_spread": [spread] * 3,
            "pcc_to_clean": pcc,
            "pcc_to_clean_spread": [spread] * 3,
        }
    }


def _cascade(ssims):
    return {
        "steps": [{"layer": "original", "ssim": 1.0, "spearman": 1.0}]
        + [{"layer": f"l{i}", "ssim": s, "spearman": s} for i, s in enumerate(ssims)]
    }


def test_the_theses_numbers_flag_noise_inputs_but_not_weight_noise():
    baseline = {
        "noise_inputs": _noise(0.233),
        "weight_noise": _sweep([1, 0.9, 0.7], [1, 0.8, 0.6]),
        "randomization": _cascade([0.5, 0.3, 0.2]),
    }
    suspect = {
        "noise_inputs": _noise(0.975),
        "weight_noise": _sweep([1, 0.88, 0.72], [1, 0.82, 0.61]),
        "randomization": _cascade([0.52, 0.31, 0.2]),
        "reference": {"pearson": 0.1},
    }
    card = report_card(baseline, suspect)
    by_test = {f["test"]: f for f in card["findings"]}
    ni = by_test["noise_inputs"]
    assert ni["threshold"] == pytest.approx(0.233 + (1 - 0.233) / 2)
    assert ni["flagged"]
    assert not by_test["weight_noise/agreement"]["flagged"]
    assert not by_test["weight_noise/pcc_to_clean"]["flagged"]
    assert "does not separate" in by_test["weight_noise/agreement"]["verdict"]
    assert not by_test["randomization"]["flagged"]
    # reference threshold: half the baseline's own PCC at the smallest non-zero sigma (0.8)
    assert by_test["reference"]["threshold"] == pytest.approx(0.4) and by_test["reference"]["flagged"]
    assert card["flagged_by"] == ["noise_inputs", "reference"]
    assert "Not separated by" in card["summary"]


def test_a_clean_suspect_is_not_flagged_by_noise_inputs():
    card = report_card({"noise_inputs": _noise(0.3)}, {"noise_inputs": _noise(0.35)})
    assert card["flagged_by"] == [] and card["summary"].startswith("No test flags")
