"""Noise inputs: the pairwise similarity measures what it claims on maps with a known answer."""

from __future__ import annotations

import pytest
import torch

from backend.detect.noise_inputs import noise_images, noise_input_test, pairwise_similarity
from backend.errors import InvalidConfig


def test_identical_maps_score_one_and_independent_maps_near_zero():
    g = torch.Generator().manual_seed(0)
    same = torch.rand(1, 16, 16, generator=g).repeat(5, 1, 1)
    s = pairwise_similarity(same)
    assert s["pairs"] == 10
    assert s["pcc_mean"] == pytest.approx(1.0, abs=1e-5) and s["ssim_mean"] == pytest.approx(1.0, abs=1e-5)
    independent = pairwise_similarity(torch.rand(8, 16, 16, generator=g))
    assert abs(independent["pcc_mean"]) < 0.1
    with pytest.raises(InvalidConfig):
        pairwise_similarity(same[:1])


def test_noise_images_are_seeded_standard_normal():
    a = noise_images(64, (3, 8, 8), seed=1)
    assert torch.equal(a, noise_images(64, (3, 8, 8), seed=1))
    assert abs(float(a.mean())) < 0.05 and abs(float(a.std()) - 1) < 0.05


def test_noise_input_test_on_a_model_returns_maps_and_bounded_scores(small_net):
    res = noise_input_test(small_net, (3, 16, 16), n=6, seed=0, method="gradient")
    assert res["maps"].shape == (6, 16, 16)
    assert float(res["maps"].min()) >= 0 and float(res["maps"].max()) <= 1
    assert -1 <= res["pcc_mean"] <= 1 and res["pairs"] == 15
