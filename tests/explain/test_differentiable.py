"""Heatmaps as training losses: create_graph=True gives exact, non-zero, finite weight gradients."""

from __future__ import annotations

import copy

import pytest
import torch

from backend.explain import METHODS, explain
from backend.explain.normalize import clip_minmax
from tests.explain.conftest import assert_second_derivatives, first_last

DIFFERENTIABLE = sorted(name for name, spec in METHODS.items() if spec.differentiable)
FAST = {"integrated_gradients": {"steps": 4}, "smoothgrad": {"n": 3}}


@pytest.mark.parametrize("method", DIFFERENTIABLE)
def test_heatmap_loss_reaches_first_and_last_layer(vgg, images, method):
    # Gradient_T never looks below its layer and ReLU gates have zero curvature, so its first-layer
    # gradient is exactly 0 on a ReLU net; softplus(beta) smoothing (the thesis' remedy) makes it flow.
    beta = 20.0 if method == "gradient_t" else None
    out = explain(vgg, images, method=method, create_graph=True, softplus_beta=beta, **FAST.get(method, {}))
    loss = clip_minmax(out.heatmap).mean() if METHODS[method].layer_based else out.heatmap.pow(2).mean()
    grads = torch.autograd.grad(loss, first_last(vgg))
    for g in grads:
        assert torch.isfinite(g).all() and g.abs().sum() > 0, method


def test_gradient_t_ignores_layers_below_without_softplus(vgg, images):
    out = explain(vgg, images, method="gradient_t", create_graph=True)
    first, last = first_last(vgg)
    g_first, g_last = torch.autograd.grad(out.heatmap.pow(2).mean(), [first, last], allow_unused=True)
    assert (g_first is None or g_first.abs().sum() == 0) and g_last.abs().sum() > 0


@pytest.mark.parametrize("method", DIFFERENTIABLE)
def test_create_graph_does_not_change_the_heatmap(vgg, images, method):
    params = FAST.get(method, {})
    plain = explain(vgg, images, method=method, **params)
    graph = explain(vgg, images, method=method, create_graph=True, **params)
    assert graph.heatmap.requires_grad and not plain.heatmap.requires_grad
    assert torch.allclose(
        plain.heatmap, graph.heatmap.detach(), rtol=1e-5, atol=1e-6 * plain.heatmap.abs().max()
    )
    assert torch.allclose(plain.logits, graph.logits.detach(), atol=1e-5)


@pytest.mark.parametrize(
    "method,composite",
    [
        ("lrp", "epsilon_alpha1beta0"),
        ("lrp", "zbox_zplus"),
        ("lrp_t", "epsilon_alpha1beta0"),
        ("gradcam", None),
    ],
)
def test_second_derivatives_match_finite_differences(vgg, images, method, composite):
    """d(loss on the heatmap)/d(weight) from autograd equals central differences (float64)."""
    model = copy.deepcopy(vgg).double()
    x = images[:2, :, :16, :16].double()
    params = {} if composite is None else {"composite": composite}
    probe = torch.randn(x.shape[0], *x.shape[2:], generator=torch.Generator().manual_seed(2), dtype=x.dtype)

    def loss(create_graph: bool = False) -> torch.Tensor:
        out = explain(model, x, target=1, method=method, create_graph=create_graph, **params)
        return (out.heatmap * probe).sum()

    weights = [model[0].weight, model[1].weight, model[-1].weight]  # first conv, its BatchNorm, last dense
    assert_second_derivatives(loss, weights, rtol=1e-5)


@pytest.mark.parametrize("composite", ["epsilon_alpha1beta0", "zbox_zplus"])
def test_single_pass_lrp_equals_the_packed_formula_on_lite0(composite):
    """The single pass uses a gradient relay (ReLU6 pass rule, depthwise convs, residual adds, signed
    inputs to z+); the packed create_graph pass spells the rules out. Both must give the same map."""
    from backend.models import zoo

    torch.manual_seed(0)
    model = zoo.build("efficientnet_lite0")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    plain = explain(model, x, 7, "lrp", composite=composite).heatmap
    packed = explain(model, x, 7, "lrp", composite=composite, create_graph=True).heatmap.detach()
    assert plain.abs().max() > 0
    assert torch.allclose(plain, packed, rtol=1e-4, atol=1e-5 * packed.abs().max())


@pytest.mark.parametrize(
    "layer", ["6", "4", "3"]
)  # after a ReLU, a ReLU, and a conv whose BatchNorm is above
def test_lrp_t_with_frozen_weights_and_any_cut_matches_its_packed_pass(vgg, images, layer):
    frozen = [p for p in vgg.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        plain = explain(vgg, images, 1, "lrp_t", layer=layer).native
    finally:
        for p in frozen:
            p.requires_grad_(True)
    packed = explain(vgg, images, 1, "lrp_t", layer=layer, create_graph=True).native.detach()
    assert plain.abs().sum() > 0
    assert torch.allclose(plain, packed, rtol=1e-5, atol=1e-6 * packed.abs().max())
