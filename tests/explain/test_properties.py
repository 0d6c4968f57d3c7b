"""Invariants of the methods: IG completeness, LRP conservation, SmoothGrad seeding, normalisers."""

from __future__ import annotations

import pytest
import torch

from backend.explain import explain, normalize
from tests.explain.conftest import vgg_like


def test_integrated_gradients_completeness(vgg, images):
    """sum IG = f(x) - f(baseline) for the target logit: within 2% at 128 steps, and converging."""
    with torch.no_grad():
        gaps = vgg(images) - vgg(torch.zeros_like(images))
    target = gaps.abs().argmax(1)  # the class whose logit moves most along the path
    gap = gaps.gather(1, target[:, None])[:, 0]
    assert gap.abs().min() > 1e-2
    errors = []
    for steps in (8, 128):
        ig = explain(vgg, images, target=target, method="integrated_gradients", steps=steps)
        errors.append(((ig.heatmap.sum((1, 2)) - gap).abs() / gap.abs()).max())
    assert errors[1] < 0.02 and errors[1] < errors[0], errors


def test_epsilon_lrp_conserves_relevance_layer_to_layer(images):
    """Bias-free ReLU net, epsilon rule everywhere: the relevance sum is the logit at every layer."""
    torch.manual_seed(4)
    model = vgg_like(batchnorm=False, bias=False).double()
    x = images.double()
    params = {"composite": "epsilon", "epsilon": 1e-12}
    full = explain(model, x, method="lrp", **params)
    logit = full.logits.gather(1, full.target[:, None])[:, 0]
    assert torch.allclose(full.native.sum((1, 2, 3)), logit, rtol=1e-8)
    for layer in ("1", "4", "7"):  # after the 1st, 2nd and 3rd conv
        at_layer = explain(model, x, method="lrp_t", layer=layer, **params)
        assert torch.allclose(at_layer.native.sum((1, 2)), logit, rtol=1e-8), layer


def test_zplus_lrp_relevance_is_non_negative_on_hidden_layers(vgg, images):
    """z+ after the first layer (Pasliev) only passes positive contributions: hidden relevance >= 0."""
    rel = explain(vgg, images, method="lrp_t", layer="6", composite="zbox_zplus")
    logit = rel.logits.gather(1, rel.target[:, None])[:, 0]
    assert (logit > 0).all()
    assert (rel.native >= 0).all() and rel.native.sum() > 0


def test_smoothgrad_is_seeded_and_reduces_to_gradient_without_noise(vgg, images):
    grad = explain(vgg, images, target=0, method="gradient")
    flat = explain(vgg, images, target=0, method="smoothgrad", n=3, sigma=0.0)
    assert torch.allclose(flat.native, grad.native, atol=1e-6)
    a = explain(vgg, images, target=0, method="smoothgrad", n=4, seed=7)
    b = explain(vgg, images, target=0, method="smoothgrad", n=4, seed=7)
    c = explain(vgg, images, target=0, method="smoothgrad", n=4, seed=8)
    assert torch.equal(a.heatmap, b.heatmap)
    assert not torch.allclose(a.heatmap, c.heatmap)


def test_chunking_does_not_change_results(vgg, images):
    """IG computed 3 images at a time equals IG computed in one pass."""
    one = explain(vgg, images, method="integrated_gradients", steps=8, batch_size=1000)
    chunked = explain(vgg, images, method="integrated_gradients", steps=8, batch_size=3)
    assert torch.allclose(one.native, chunked.native, atol=1e-6)


@pytest.mark.parametrize("name", sorted(normalize.NORMALIZERS))
def test_normalisers(name):
    h = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(0))
    out = normalize.NORMALIZERS[name](h)
    assert out.shape == h.shape
    flat = out.flatten(1)
    if name == "sum_to_one":
        assert torch.allclose(flat.sum(1), torch.ones(4)) and (flat >= 0).all()
    elif name == "abs_sum":
        assert torch.equal(out, h.abs())
    elif name == "none":
        assert torch.equal(out, h)
    elif name == "abs_channels":  # the thesis's sum over channels of |g_c|, scaled by its max
        assert torch.allclose(out, h.abs() / h.abs().amax((1, 2), keepdim=True))
        g = torch.randn(4, 3, 5, 6, generator=torch.Generator().manual_seed(1))
        summed = g.abs().sum(1)
        assert torch.allclose(normalize.abs_channels(g), summed / summed.amax((1, 2), keepdim=True))
    else:
        assert torch.allclose(flat.max(1).values, torch.ones(4)) and (flat >= 0).all()
        if name == "clip_minmax":
            assert torch.equal(flat == 0, h.flatten(1) <= 0)
        else:
            assert torch.allclose(flat.min(1).values, torch.zeros(4))


def test_pass_rule_conserves_relevance_through_clipping_activations():
    """ReLU6 clips at 6; the Pass rule still hands relevance through whole (a plain gradient would not)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, bias=False),
        torch.nn.ReLU6(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 3, bias=False),
    ).double()
    with torch.no_grad():
        model[0].weight.mul_(20)  # many pre-activations far above 6
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert (model[0](x) > 6).float().mean() > 0.2
    for create_graph in (False, True):
        out = explain(model, x, method="lrp", composite="epsilon", epsilon=1e-12, create_graph=create_graph)
        logit = out.logits.gather(1, out.target[:, None])[:, 0]
        assert torch.allclose(out.native.sum((1, 2, 3)), logit, rtol=1e-8)
    gxi = explain(model, x, target=out.target, method="grad_x_input")
    assert not torch.allclose(gxi.heatmap.sum((1, 2)), logit.detach(), rtol=1e-3)
