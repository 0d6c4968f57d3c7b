"""Gradient, Gradient x Input, IG, Grad-CAM and Occlusion equal captum on the same batch (float64)."""

from __future__ import annotations

import copy

import pytest
import torch
from captum.attr import (
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)

from backend.explain import explain


@pytest.fixture(scope="module")
def model64(vgg):
    return copy.deepcopy(vgg).double()


@pytest.fixture(scope="module")
def x64():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def close(ours: torch.Tensor, ref: torch.Tensor) -> bool:
    ref = ref.detach()
    assert ref.abs().max() > 0
    return torch.allclose(ours, ref.to(ours), rtol=1e-7, atol=1e-10 * float(ref.abs().max()))


def test_gradient_is_captum_saliency_without_abs(model64, x64):
    ours = explain(model64, x64, target=2, method="gradient")
    assert close(ours.native, Saliency(model64).attribute(x64, target=2, abs=False))
    assert close(ours.heatmap, ours.native.sum(1))


def test_grad_x_input_is_captum_input_x_gradient(model64, x64):
    target = torch.tensor([0, 1, 4])
    ours = explain(model64, x64, target=target, method="grad_x_input")
    assert close(ours.native, InputXGradient(model64).attribute(x64, target=target))


def test_integrated_gradients_match_captum(model64, x64):
    ours = explain(model64, x64, target=1, method="integrated_gradients", steps=16, batch_size=20)
    ref = IntegratedGradients(model64).attribute(
        x64, baselines=0.0, target=1, n_steps=16, method="riemann_middle"
    )
    assert close(ours.native, ref)


def test_gradcam_matches_captum_layer_gradcam_upsampled(model64, x64):
    layer = model64.get_submodule(model64.default_target_layer)
    ours = explain(model64, x64, target=torch.tensor([0, 2, 4]), method="gradcam")
    cam = LayerGradCam(model64, layer).attribute(x64, target=ours.target, relu_attributions=True)
    assert close(ours.native, cam[:, 0])
    assert close(ours.heatmap, LayerAttribution.interpolate(cam, x64.shape[-2:], "bilinear")[:, 0])


@pytest.mark.parametrize("patch,stride", [(4, 4), (6, 4)])
def test_occlusion_matches_captum(model64, x64, patch, stride):
    ours = explain(model64, x64, target=3, method="occlusion", patch=patch, stride=stride, batch_size=16)
    ref = Occlusion(model64).attribute(
        x64, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride), baselines=0.0, target=3
    )
    assert close(ours.heatmap, ref[:, 0])
