"""Every call leaves the model as it found it (hooks, modules, modes, outputs); bad input: typed errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from backend.errors import InvalidConfig, UnknownMethod
from backend.explain import METHODS, explain
from backend.explain.lrp.canonizers import layout
from tests.explain.conftest import first_last

SMALL = {
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"n": 2},
    "occlusion": {"patch": 16, "stride": 16},
}


def snapshot(model: nn.Module):
    return [
        (
            m,
            m.training,
            dict(m._forward_hooks),
            dict(m._forward_pre_hooks),
            dict(m._backward_hooks),
            getattr(m, "inplace", None),
            tuple(m.children()),
        )
        for m in model.modules()
    ]


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("create_graph", [False, True])
def test_model_unchanged_after_every_call(vgg, images, method, create_graph):
    if create_graph and not METHODS[method].differentiable:
        pytest.skip("not differentiable")
    vgg.train()
    vgg[1].eval()  # a mixed state must come back exactly
    before = snapshot(vgg)
    params = {k: p.detach().clone() for k, p in vgg.state_dict().items()}
    explain(
        vgg, images, method=method, create_graph=create_graph, softplus_beta=10.0, **SMALL.get(method, {})
    )
    assert snapshot(vgg) == before
    assert all(torch.equal(params[k], p) for k, p in vgg.state_dict().items())
    vgg.eval()
    with torch.no_grad():
        reference = vgg(images)
    explain(vgg, images, method=method, create_graph=create_graph, **SMALL.get(method, {}))
    with torch.no_grad():
        assert torch.equal(vgg(images), reference)


def test_hooks_removed_when_the_model_fails_mid_call(vgg):
    before = snapshot(vgg)
    for method in ("lrp", "lrp_t", "gradcam"):
        with pytest.raises(InvalidConfig, match="could not run"):
            explain(vgg, torch.randn(1, 4, 16, 16), method=method)
        assert snapshot(vgg) == before


def test_explain_leaves_no_hooks_on_lite0():
    from backend.models import zoo

    model = zoo.build("efficientnet_lite0")
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    before = snapshot(model)
    lay = layout(model, x)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(lay.order) == len(convs) + 1 and all(c in lay.bn_of for c in convs)  # every conv folds its BN
    out = explain(model, x, method="lrp", create_graph=True)
    assert out.heatmap.shape == (1, 32, 32) and torch.isfinite(out.heatmap).all()
    grads = torch.autograd.grad(out.heatmap.abs().mean(), first_last(model))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    cam = explain(model, x, method="gradcam")
    assert cam.native.shape[-2:] == (1, 1) and cam.heatmap.shape == (1, 32, 32)
    assert snapshot(model) == before


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"method": "deeplift"}, UnknownMethod, "choose one of"),
        ({"method": "lrp", "composite": "nope"}, InvalidConfig, "composite"),
        ({"method": "gradient", "steps": 3}, InvalidConfig, "no parameter steps"),
        ({"method": "occlusion", "create_graph": True}, InvalidConfig, "not differentiable"),
        ({"method": "occlusion", "patch": 4, "stride": 8}, InvalidConfig, "stride"),
        ({"method": "gradcam", "layer": "features.99"}, InvalidConfig, "no layer"),
        ({"method": "gradcam", "layer": "15"}, InvalidConfig, "feature map"),
        ({"method": "gradient", "target": 99}, InvalidConfig, "out of range"),
        ({"method": "gradient", "target": torch.tensor([1, 2])}, InvalidConfig, "batch has 3"),
        ({"method": "gradient", "softplus_beta": -1.0}, InvalidConfig, "positive"),
    ],
)
def test_bad_requests_get_typed_errors(vgg, images, kwargs, error, match):
    with pytest.raises(error, match=match):
        explain(vgg, images, **kwargs)


def test_bad_input_batch(vgg):
    with pytest.raises(InvalidConfig, match=r"\(B, C, H, W\)"):
        explain(vgg, torch.randn(3, 16, 16))


def test_registry_metadata_drives_a_ui():
    assert set(METHODS) == {
        "gradient",
        "gradient_t",
        "grad_x_input",
        "integrated_gradients",
        "smoothgrad",
        "gradcam",
        "lrp",
        "lrp_t",
        "occlusion",
    }
    assert [n for n, s in METHODS.items() if not s.differentiable] == ["occlusion"]
    assert {n for n, s in METHODS.items() if s.layer_based} == {"gradient_t", "gradcam", "lrp_t"}
    assert METHODS["lrp"].params["composite"] == "epsilon_alpha1beta0"
    assert set(METHODS["lrp"].choices["composite"]) >= {"epsilon_alpha1beta0", "zbox_zplus"}
    assert all(s.cost in ("fast", "heavy") and s.label for s in METHODS.values())


@pytest.mark.parametrize(
    ("method", "params", "units"),
    [
        ("integrated_gradients", {"steps": 10, "batch_size": 6}, 10),
        ("smoothgrad", {"n": 7, "batch_size": 4}, 7),
        ("occlusion", {"patch": 8, "stride": 8, "batch_size": 4}, 16),
    ],
)
def test_heavy_methods_report_monotone_progress_to_completion(vgg, images, method, params, units):
    calls: list[tuple[int, int]] = []
    plain = explain(vgg, images, None, method, **params).heatmap
    watch = lambda p: calls.append((p.done, p.total))  # noqa: E731
    watched = explain(vgg, images, None, method, progress=watch, **params).heatmap
    assert len(calls) >= 2, "a heavy method must report more than once when it runs in several chunks"
    assert {t for _, t in calls} == {units}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[0] > 0 and done[-1] == units
    assert torch.equal(plain, watched)  # watching does not change the result


@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad"])
def test_path_methods_with_a_given_target_skip_the_extra_forward_until_logits_are_read(vgg, images, method):
    forwards = []
    handle = vgg.register_forward_hook(lambda m, i, o: forwards.append(i[0].shape[0]))
    try:
        lazy = explain(vgg, images, 2, method, batch_size=1024)
        assert forwards == [len(images) * (32 if method == "integrated_gradients" else 16)]  # the path only
        logits = lazy.logits  # now one forward of the batch itself, in eval mode
        assert forwards[1:] == [len(images)]
        assert lazy.logits is logits and len(forwards) == 2  # computed once
        eager = explain(vgg, images, None, method, batch_size=1024)  # the prediction is needed first
        assert forwards[2:] == [len(images), forwards[0]]
    finally:
        handle.remove()
    with torch.no_grad():
        assert torch.allclose(logits, vgg.eval()(images), atol=1e-6)
    assert torch.equal(lazy.target, torch.full((len(images),), 2)) and torch.equal(
        eager.target, logits.argmax(1)
    )
