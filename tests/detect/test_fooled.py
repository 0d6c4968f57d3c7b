"""Baseline vs the fooled (tiny) shapes CNN: the noise-input test separates them the way the thesis reports
(a fooled model's maps of noise images are near-identical), and the report card says so."""

from __future__ import annotations

import pytest

from backend.detect.noise_inputs import noise_input_test
from backend.detect.report import report_card


@pytest.mark.slow
def test_noise_inputs_flag_the_fooled_model(tiny_registry, fooled_tiny):
    _, base, card = tiny_registry
    fooled, _ = fooled_tiny
    shape = (3, card.preprocessing["size"], card.preprocessing["size"])
    b = noise_input_test(base, shape, n=10, seed=0, method="gradient")
    s = noise_input_test(fooled, shape, n=10, seed=0, method="gradient")
    # thesis Table 4.2: PCC 0.975 (fooled) vs 0.233 (baseline); the direction and a clear gap must hold
    assert s["pcc_mean"] > b["pcc_mean"] + 0.2
    assert s["ssim_mean"] > b["ssim_mean"]
    card_ = report_card({"noise_inputs": b}, {"noise_inputs": s})
    assert card_["flagged_by"] == ["noise_inputs"]  # crosses b + (1 - b) / 2
    print(
        f"noise-input PCC baseline {b['pcc_mean']:.3f} vs fooled {s['pcc_mean']:.3f}; "
        f"SSIM {b['ssim_mean']:.3f} vs {s['ssim_mean']:.3f}"
    )
