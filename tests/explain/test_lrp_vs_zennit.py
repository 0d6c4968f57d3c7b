"""Our autograd LRP equals zennit 0.5.1 with the equivalent composite and canonizers (float64)."""

from __future__ import annotations

import copy

import pytest
import torch
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite, layer_map_base
from zennit.rules import AlphaBeta, Epsilon, ZBox, ZPlus
from zennit.torchvision import ResNetCanonizer
from zennit.types import Convolution, Linear

from backend.explain import explain
from backend.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from tests.explain.conftest import small_resnet, vgg_like

LOW = (-torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)).view(1, 3, 1, 1).double()
HIGH = ((1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)).view(1, 3, 1, 1).double()


def zennit_composite(name: str, canonizers: list):
    if name == "epsilon_alpha1beta0":
        rules = [(Convolution, AlphaBeta(alpha=1.0, beta=0.0)), (Linear, Epsilon(epsilon=0.01))]
        return LayerMapComposite(layer_map=layer_map_base(stabilizer=1e-30) + rules, canonizers=canonizers)
    return SpecialFirstLayerMapComposite(
        layer_map=layer_map_base(stabilizer=1e-30) + [(Convolution, ZPlus()), (Linear, ZPlus())],
        first_map=[(Convolution, ZBox(low=LOW, high=HIGH))],
        canonizers=canonizers,
    )


def zennit_lrp(model, x, target, composite):
    with Gradient(model=model, composite=composite) as attributor:
        out = model(x)
        seed = torch.nn.functional.one_hot(target, out.shape[1]).to(out) * out  # relevance = target logit
        _, relevance = attributor(x, seed)
    return relevance


CASES = [
    (arch, composite)
    for arch in ("vgg", "vgg_bn", "resnet")
    for composite in ("epsilon_alpha1beta0", "zbox_zplus")
] + [("resnet_bottleneck", "epsilon_alpha1beta0")]


@pytest.mark.parametrize("arch,composite", CASES)
def test_lrp_matches_zennit(arch, composite, vgg, resnet, images):

    torch.manual_seed(3)
    models = {
        "vgg": vgg_like,
        "vgg_bn": lambda: vgg,
        "resnet": lambda: resnet,
        "resnet_bottleneck": lambda: small_resnet("bottleneck"),
    }
    model = copy.deepcopy(models[arch]()).double()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 0.0  # zennit leaves the merged BatchNorm computing x / sqrt(1 + eps), not the identity
    resnets = arch.startswith("resnet")
    canonizers = [ResNetCanonizer()] if resnets else [SequentialMergeBatchNorm()]
    x = torch.randn(2, 3, 24, 24, dtype=torch.float64) if resnets else images.double()
    ours = explain(model, x, method="lrp", composite=composite)
    ref = zennit_lrp(model, x, ours.target, zennit_composite(composite, canonizers))
    assert ref.abs().sum() > 0
    assert torch.allclose(ours.native, ref, rtol=1e-6, atol=1e-9 * float(ref.abs().max()))
    assert torch.allclose(ours.heatmap, ref.sum(1), rtol=1e-6, atol=1e-9 * float(ref.abs().max()))
