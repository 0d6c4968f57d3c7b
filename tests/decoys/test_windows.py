"""Crop windows: a patch changes F_l only inside the layer's receptive field, so optimising decoys on a
window around each patch measures exactly the full image's ||F_l(x~) - F_l(x)||_inf, at a fraction of
the pixels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import backend.decoys.generate as generate
from backend.decoys.features import layer_output
from backend.decoys.generate import DecoySettings, feature_distance, optimise_decoys
from backend.decoys.masks import patch_masks
from backend.decoys.windows import plan_windows, receptive_field
from backend.models import zoo


def test_receptive_field_of_plain_stacks_and_refusal_of_global_layers(tiny_net):
    assert receptive_field(tiny_net, "1") == (3, 1)
    assert receptive_field(tiny_net, "3") == (5, 1)
    assert receptive_field(tiny_net, "6") is None  # global pooling below the layer: every unit sees all
    shapes = zoo.build("shapes_cnn")
    assert receptive_field(shapes, "features.2") == (3, 2)
    assert receptive_field(shapes, "features.5") == (7, 4)


@pytest.mark.parametrize("patch,stride", [(4, 4), (5, 3)])
def test_window_differences_equal_the_full_images(patch, stride):
    torch.manual_seed(0)
    model = zoo.build("shapes_cnn").eval()
    layer = "features.5"
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 64, 64, generator=g)
    masks = patch_masks(64, 64, patch, stride)
    windows = plan_windows(masks, receptive_field(model, layer))
    assert windows is not None and windows.h * windows.w < 64 * 64 / 4
    idx = torch.arange(masks.shape[0])
    changed = torch.where(masks[:, None], torch.rand(len(idx), 3, 64, 64, generator=g), x[None])
    with torch.no_grad(), layer_output(model, layer) as feats:
        crops = windows.crop(x, idx)
        assert torch.equal(windows.paste(x, windows.crop(changed[0], idx[:1]), idx[:1])[0], changed[0])
        moved = torch.stack([windows.crop(changed[i], idx[i : i + 1])[0] for i in idx.tolist()])
        assert torch.equal(windows.crop_masks(masks, idx).flatten(1).sum(1), masks.flatten(1).sum(1))
        in_windows = (feats(moved) - feats(crops)).abs().flatten(1).amax(1)
    full = feature_distance(model, x, changed, layer, lambda t: t)
    torch.testing.assert_close(in_windows, full, rtol=1e-5, atol=1e-6)


def test_decoys_on_windows_match_decoys_on_full_images(tiny_net, normalize, monkeypatch):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 40, 40, generator=g)
    s = DecoySettings(layer="1", patch=4, stride=8)
    assert plan_windows(patch_masks(40, 40, 4, 8), receptive_field(tiny_net, "1")) is not None
    windowed = optimise_decoys(tiny_net, x, normalize, s)
    monkeypatch.setattr(generate, "plan_windows", lambda masks, field: None)
    full = optimise_decoys(tiny_net, x, normalize, s)
    assert windowed.trivial == 0 and (windowed.linf <= windowed.epsilon * (1 + 1e-5)).all()
    torch.testing.assert_close(windowed.deviation, full.deviation, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(windowed.decoys, full.decoys, rtol=0, atol=1e-3)
    assert windowed.iterations == full.iterations
    assert isinstance(tiny_net[1], nn.ReLU)
