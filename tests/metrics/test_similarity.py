"""Similarity metrics against scipy / skimage and on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity

from backend.metrics import similarity as sim


@pytest.fixture
def maps() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 16, 16, generator=g)
    b = 0.5 * a + 0.5 * torch.rand(4, 16, 16, generator=g)
    b[3] = torch.round(b[3] * 4) / 4  # ties for the rank correlation
    return a, b


def test_pearson_and_spearman_match_scipy(maps):
    a, b = maps
    p = sim.pearson(a, b)
    s = sim.spearman(a, b)
    for i in range(a.shape[0]):
        x, y = a[i].flatten().numpy(), b[i].flatten().numpy()
        assert p[i].item() == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-5)
        assert s[i].item() == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-5)


def test_ssim_matches_skimage(maps):
    a, b = maps
    ours = sim.ssim(a, b, data_range=1.0)
    ours_gauss = sim.ssim(a, b, data_range=1.0, gaussian=True)
    ours_auto = sim.ssim(a, b)
    for i in range(a.shape[0]):
        x, y = a[i].double().numpy(), b[i].double().numpy()
        assert ours[i].item() == pytest.approx(structural_similarity(x, y, data_range=1.0), abs=1e-5)
        ref_gauss = structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5)
        assert ours_gauss[i].item() == pytest.approx(ref_gauss, abs=1e-5)
        joint = max(x.max(), y.max()) - min(x.min(), y.min())
        assert ours_auto[i].item() == pytest.approx(structural_similarity(x, y, data_range=joint), abs=1e-5)
    assert sim.ssim(a, a).min().item() == pytest.approx(1.0, abs=1e-6)


def test_mse_and_broadcast_to_a_single_target():
    a = torch.zeros(3, 8, 8)
    target = torch.ones(8, 8)
    assert torch.allclose(sim.mse(a, target), torch.ones(3))
    assert torch.allclose(sim.mse(a + 0.5, target), torch.full((3,), 0.25))


def test_pearson_of_constant_map_is_zero_and_sign_flip_is_minus_one():
    a = torch.rand(2, 8, 8)
    assert sim.pearson(a, torch.ones(2, 8, 8)).abs().max() == 0
    assert torch.allclose(sim.pearson(a, -a), -torch.ones(2), atol=1e-6)


def test_topk_intersection_hand_made():
    a = torch.zeros(1, 10, 10)
    b = torch.zeros(1, 10, 10)
    a[0, 0, :] = 1.0  # top 10% of a: the first row
    b[0, 0, :5] = 1.0  # b shares half of it
    b[0, 9, :5] = 1.0
    assert sim.topk_intersection(a, b, 0.1).item() == pytest.approx(0.5)
    assert sim.topk_intersection(a, a, 0.1).item() == pytest.approx(1.0)


def test_center_of_mass_and_distance_hand_made():
    h = torch.zeros(2, 11, 11)
    h[0, 2, 3] = 1.0
    h[1, 8, 8] = 1.0
    h[1, 8, 10] = 1.0  # mass split between two pixels -> (8, 9)
    com = sim.center_of_mass(h)
    assert com.tolist() == [[2.0, 3.0], [8.0, 9.0]]
    d = sim.com_distance(h[:1], h[1:])
    assert d.item() == pytest.approx(np.hypot(6, 6))
    assert sim.com_distance(h[:1], h[1:], norm="l1").item() == pytest.approx(12.0)
    # an empty map sits in the middle
    assert sim.center_of_mass(torch.zeros(1, 11, 11)).tolist() == [[5.0, 5.0]]


def test_center_of_mass_is_differentiable():
    h = torch.rand(1, 8, 8, requires_grad=True)
    sim.center_of_mass(h).sum().backward()
    assert h.grad is not None and torch.isfinite(h.grad).all() and h.grad.abs().sum() > 0


def test_mismatched_sizes_are_refused():
    with pytest.raises(ValueError, match="equal size"):
        sim.mse(torch.zeros(1, 8, 8), torch.zeros(1, 9, 9))
