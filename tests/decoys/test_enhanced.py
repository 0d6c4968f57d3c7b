"""Decoy-enhanced score Z and the paper's visualisation; S_F and S_S."""

from __future__ import annotations

import torch

from backend.decoys.enhanced import decoy_range, visualize
from backend.decoys.metrics import fidelity, sensitivity


def test_z_is_max_minus_min_non_negative_and_zero_where_no_decoy_differs():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(7, 3, 10, 10, generator=g)
    maps[:, :, :4, :4] = maps[0, :, :4, :4]  # every decoy agrees on this corner
    z = decoy_range(maps)
    assert z.shape == (3, 10, 10)
    assert (z >= 0).all()
    assert float(z[:, :4, :4].abs().max()) == 0.0
    assert (z[:, 5:, 5:] > 0).all()
    i, j = 7, 8
    torch.testing.assert_close(z[1, i, j], maps[:, 1, i, j].max() - maps[:, 1, i, j].min())


def test_visualize_follows_the_paper_abs_channel_max_winsorise_scale():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(3, 20, 20, generator=g)
    v = visualize(s)
    assert v.shape == (20, 20)
    assert float(v.min()) == 0.0 and float(v.max()) == 1.0
    per_pixel = s.abs().amax(0)
    cap = torch.quantile(per_pixel.flatten(), 0.95)
    # every pixel at or above the 95th percentile is winsorised to the top value
    assert (v[per_pixel >= cap] == 1.0).all()
    assert int((v == 1.0).sum()) >= int(0.05 * 400)
    # monotone in the per-pixel saliency below the cap
    below = per_pixel < cap
    order = per_pixel[below].argsort()
    assert (v[below][order].diff() >= 0).all()
    assert float(visualize(torch.ones(5, 5)).abs().max()) == 0.0


def test_fidelity_is_zero_for_a_constant_map_and_sensitivity_is_a_ratio(tiny_net, normalize, image):
    assert abs(fidelity(tiny_net, image, torch.full((24, 24), 0.7), normalize, 0)) < 1e-5
    a, b = torch.zeros(4, 4), torch.ones(4, 4)
    x, y = torch.zeros(3, 4, 4), torch.full((3, 4, 4), 0.5)
    assert abs(sensitivity(a, b, x, y) - 4.0 / float(torch.full((48,), 0.5).norm())) < 1e-6
    assert sensitivity(a, a, x, y) == 0.0
