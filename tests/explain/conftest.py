"""Small models for the explanation tests: VGG-like (BatchNorm or not, bias-free), torchvision ResNets."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine params, so folding BN actually changes the weights."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


def vgg_like(batchnorm: bool = False, bias: bool = True, classes: int = 5) -> nn.Sequential:
    """Conv-(BN)-ReLU blocks with max pooling, an adaptive average pool and a two-layer classifier."""
    layers: list[nn.Module] = []
    channels = [3, 8, 16, 16]
    for i, (cin, cout) in enumerate(zip(channels, channels[1:])):
        layers.append(nn.Conv2d(cin, cout, 3, padding=1, bias=bias))
        if batchnorm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
        if i < 2:
            layers.append(nn.MaxPool2d(2))
    last_conv_block = str(len(layers) - 1)  # the last ReLU: the papers' "last conv layer" target
    layers += [
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 32, bias=bias),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(32, classes, bias=bias),
    ]
    model = nn.Sequential(*layers)
    model.default_target_layer = last_conv_block
    return randomise_batchnorm(model).eval()


def assert_second_derivatives(loss, weights: list[torch.Tensor], rtol: float, picks: int = 2) -> None:
    """d loss / d w from the create_graph heatmap equals central differences at random entries (float64).

    `loss(create_graph)` recomputes the heatmap loss; every weight must also get a non-zero gradient.
    """
    analytic = torch.autograd.grad(loss(True), weights)
    gen = torch.Generator().manual_seed(0)
    for w, g in zip(weights, analytic, strict=True):
        assert g.abs().sum() > 0, tuple(w.shape)
        for _ in range(picks):
            i = int(torch.randint(w.numel(), (1,), generator=gen))
            with torch.no_grad():
                w.view(-1)[i] += 1e-6
                up = float(loss(False))
                w.view(-1)[i] -= 2e-6
                down = float(loss(False))
                w.view(-1)[i] += 1e-6
            numeric = (up - down) / 2e-6
            assert abs(numeric - float(g.reshape(-1)[i])) <= rtol * max(1.0, abs(numeric)), (w.shape, i)


def first_last(model: nn.Module) -> tuple[nn.Parameter, nn.Parameter]:
    """The first and the last weight tensors (by registration order) of `model`."""
    weights = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    return weights[0], weights[-1]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def vgg() -> nn.Sequential:
    torch.manual_seed(0)
    return vgg_like(batchnorm=True)


def small_resnet(block: str = "basic") -> nn.Module:
    """A torchvision ResNet (Basic/Bottleneck blocks, functional `out += identity`), one block a stage."""
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    model = ResNet(BasicBlock if block == "basic" else Bottleneck, [1, 1, 1, 1], num_classes=6)
    model.default_target_layer = "layer4"
    return randomise_batchnorm(model).eval()


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return small_resnet("basic")
