"""The papers' ImageNet architectures at full depth (random init, 32 px, batch 2, CPU): every method
explains them with finite maps of the input's size and no hooks left, and one fooling step with Grad-CAM,
LRP_T and full LRP in the loss moves the weights with finite second-order gradients."""

from __future__ import annotations

import copy

import pytest
import torch

from backend.explain import METHODS, explain
from backend.fool.losses import FOOLING_ATTACKS
from backend.fool.objective import Interpreter, fooling_loss
from backend.models import zoo

pytestmark = pytest.mark.slow
SIZE, BATCH = 32, 2
CHEAP = {
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"n": 2},
    "occlusion": {"patch": 16, "stride": 16},
}


def _hooks(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


@pytest.fixture(scope="module", params=["vgg19", "resnet50", "densenet121"])
def model(request):
    torch.manual_seed(0)
    return zoo.build(request.param, 1000).eval()


def test_every_method_explains_the_full_size_model(model):
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    for name, spec in METHODS.items():
        if "image" not in spec.inputs:
            continue
        heat = explain(model, x, 3, name, **CHEAP.get(name, {})).heatmap
        assert heat.shape == (BATCH, SIZE, SIZE) and bool(torch.isfinite(heat).all()), (model.arch, name)
    assert _hooks(model) == 0


@pytest.mark.parametrize("interpreter", ["gradcam", "lrp_t", "lrp"])
def test_one_fooling_step_on_the_full_size_model(model, interpreter):
    original = copy.deepcopy(model).requires_grad_(False)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(BATCH, 3, SIZE, SIZE, generator=g), torch.tensor([1, 2])
    attack = FOOLING_ATTACKS["location"]
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=1e-2)
    result = fooling_loss(
        model, original, x, y, attack=attack, attack_cfg=attack.setup({}, SIZE, 1000),
        interpreter=Interpreter(interpreter, {}), lam=1.0, classification="labels",
    )  # fmt: skip
    result.loss.backward()
    assert all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)
    opt.step()
    opt.zero_grad(set_to_none=True)
    assert any(not torch.equal(p, b) for p, b in zip(params, before, strict=True))
    model.load_state_dict(original.state_dict())  # the next test starts from the same weights
    assert _hooks(model) == 0 and _hooks(original) == 0
