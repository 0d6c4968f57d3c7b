"""The packed (create_graph) LRP pass: exact second derivatives on the layer kinds the shapes net lacks,
and the work it avoids (no plain backward inside the heatmap's gradient, no rule work on zeros after)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from backend.explain import explain
from backend.explain.lrp.composites import COMPOSITES
from backend.explain.lrp.engine import input_relevance
from backend.explain.lrp.rules import Rule, ZPlus
from backend.models import zoo
from tests.explain.conftest import assert_second_derivatives


class GroupedResidualNet(nn.Module):
    """A merged BatchNorm, a SiLU (Pass rule), a depthwise conv with `padding="same"` (the transposed map
    then comes from autograd), a 1x1 conv on signed inputs (z+ with a+ and a- parts, stacked), a
    residual addition and a dense head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.act = nn.SiLU()
        self.dw = nn.Conv2d(6, 6, 3, padding="same", groups=6)
        self.pw = nn.Conv2d(6, 6, 1)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn(self.stem(x)))
        h = h + self.pw(self.dw(h))
        return self.head(torch.relu(h).mean((2, 3)))


@pytest.fixture
def net() -> GroupedResidualNet:
    torch.manual_seed(0)
    model = GroupedResidualNet().double().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
    return model


def _x() -> torch.Tensor:
    return torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("composite", ["epsilon_alpha1beta0", "zbox_zplus", "epsilon"])
def test_single_and_packed_passes_give_the_same_map(net, composite):
    plain = explain(net, _x(), 2, "lrp", composite=composite).heatmap
    packed = explain(net, _x(), 2, "lrp", composite=composite, create_graph=True).heatmap.detach()
    assert plain.abs().max() > 0
    assert torch.allclose(plain, packed, rtol=1e-9, atol=1e-12 * float(plain.abs().max()))


@pytest.mark.parametrize("composite", ["epsilon_alpha1beta0", "zbox_zplus"])
def test_second_derivatives_match_finite_differences(net, composite):
    x = _x()
    probe = torch.randn(2, 12, 12, generator=torch.Generator().manual_seed(2), dtype=x.dtype)

    def loss(create_graph: bool = False) -> torch.Tensor:
        out = explain(net, x, 2, "lrp", composite=composite, create_graph=create_graph)
        return (out.heatmap * probe).sum()

    weights = [net.stem.weight, net.bn.weight, net.dw.weight, net.pw.weight, net.pw.bias, net.head.weight]
    assert_second_derivatives(loss, weights, rtol=1e-6)


class _AutogradZPlus(ZPlus):
    """z+ without its own transposed map: what a new rule that only writes `modified` gets."""

    input_grad = Rule.input_grad


def test_a_rule_without_its_own_transposed_map_falls_back_to_autograd(net, monkeypatch):
    monkeypatch.setitem(COMPOSITES, "autograd_zplus", lambda layer, first, params: _AutogradZPlus())
    x = _x()
    probe = torch.randn(2, 12, 12, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    grads = {}
    for composite in ("autograd_zplus", "zplus_everywhere"):
        if composite == "zplus_everywhere":
            monkeypatch.setitem(COMPOSITES, composite, lambda layer, first, params: ZPlus())
        relevance, _ = input_relevance(net, x, lambda logits: logits[:, 2].sum(), composite, {}, True)
        heatmap = relevance.sum(1)
        grads[composite] = torch.autograd.grad((heatmap * probe).sum(), [net.stem.weight, net.pw.weight])
    for fallback, own in zip(grads["autograd_zplus"], grads["zplus_everywhere"], strict=True):
        assert own.abs().sum() > 0
        assert torch.allclose(fallback, own, rtol=1e-9, atol=1e-12)


class _ConvCalls(TorchDispatchMode):
    """Counts convolution backward calls by what they compute: (input grad, weight grad)."""

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[tuple[bool, bool]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            mask = args[-1]
            self.masks.append((bool(mask[0]), bool(mask[1])))
        return func(*args, **(kwargs or {}))


def test_heatmap_gradient_runs_only_the_transposed_maps_and_the_loss_backward_no_rule_on_zeros():
    """Inside the heatmap: one input-gradient-only call per conv (the stacked first layer included), no
    backward of the plain forward. In the training loss's backward: no input-gradient-only call, i.e.
    no carrier ran on the zero gradients that reach the second half."""
    torch.manual_seed(0)
    model = zoo.build("shapes_cnn").eval()
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    x = torch.randn(4, 3, 64, 64)
    with _ConvCalls() as heatmap_pass:
        out = explain(model, x, 1, "lrp", create_graph=True)
    assert heatmap_pass.masks == [(True, False)] * convs
    loss = out.heatmap.pow(2).mean() + nn.functional.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3]))
    with _ConvCalls() as loss_pass:
        loss.backward()
    assert (True, False) not in loss_pass.masks
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("composite", ["epsilon_alpha1beta0", "zbox_zplus"])
def test_packed_pass_under_autocast_matches_float32(composite):
    """The trainer's mixed precision runs the heatmap under autocast, while backward passes (where the
    transposed maps run) do not autocast: half activations meet float weights there."""
    torch.manual_seed(0)
    model = zoo.build("shapes_cnn").eval()
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    reference = explain(model, x, 1, "lrp", composite=composite, create_graph=True).heatmap
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = explain(model, x, 1, "lrp", composite=composite, create_graph=True)
        loss = out.heatmap.float().pow(2).mean()
    loss.backward()
    a, b = out.heatmap.detach().float().flatten(1), reference.detach().flatten(1)
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.95
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
