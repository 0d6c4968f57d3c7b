"""Weight noise: seeded, confined to the selected parameters, and the sweep's curve is consistent."""

from __future__ import annotations

import pytest
import torch

from backend.detect.weight_noise import noisy_copy, weight_noise_sweep
from backend.errors import InvalidConfig


def _flat(model, prefix=""):
    return torch.cat([p.detach().flatten() for n, p in model.named_parameters() if n.startswith(prefix)])


def test_additive_noise_has_the_requested_scale_and_leaves_the_original_alone(small_net):
    before = _flat(small_net).clone()
    noisy = noisy_copy(small_net, 0.05, seed=3)
    assert torch.equal(_flat(small_net), before)
    delta = _flat(noisy) - before
    assert abs(float(delta.mean())) < 0.01
    assert abs(float(delta.std()) - 0.05) < 0.01
    assert torch.equal(_flat(noisy_copy(small_net, 0.05, seed=3)), _flat(noisy))
    assert not torch.equal(_flat(noisy_copy(small_net, 0.05, seed=4)), _flat(noisy))
    assert torch.equal(_flat(noisy_copy(small_net, 0.0, seed=3)), before)


def test_multiplicative_noise_scales_each_weight_and_selection_restricts_it(small_net):
    noisy = noisy_copy(small_net, 0.1, seed=0, mode="multiplicative", select=["7."])
    w0, w1 = small_net[7].weight.detach(), noisy[7].weight.detach()
    ratio = (w1 / w0).flatten()
    assert abs(float(ratio.std()) - 0.1) < 0.04 and abs(float(ratio.mean()) - 1) < 0.05
    # nothing outside the selected layer moved
    assert torch.equal(_flat(noisy, "0."), _flat(small_net, "0."))
    assert torch.equal(_flat(noisy, "3."), _flat(small_net, "3."))
    with pytest.raises(InvalidConfig):
        noisy_copy(small_net, 0.1, 0, select=["nothing"])
    with pytest.raises(InvalidConfig):
        noisy_copy(small_net, 0.1, 0, mode="sideways")


def test_sweep_is_exact_at_zero_noise_and_degrades_with_more(small_net):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, 16, 16, generator=g)
    res = weight_noise_sweep(small_net, x, None, [0.0, 0.02, 2.0], [0, 1], "gradient")
    curve = res["curve"]
    assert curve["sigma"] == [0.0, 0.02, 2.0]
    assert len(res["rows"]) == 6
    assert curve["agreement"][0] == 1.0 and curve["agreement_spread"][0] == 0.0
    assert curve["pcc_to_clean"][0] == pytest.approx(1.0, abs=1e-5)
    assert curve["pcc_to_clean"][2] < curve["pcc_to_clean"][1] < 1.0
    assert "accuracy" not in curve  # no labels: agreement only
