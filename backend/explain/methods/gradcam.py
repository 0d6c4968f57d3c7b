"""Grad-CAM: ReLU(sum_c mean_hw(dS/dA_c) * A_c) at the target layer, upsampled."""

import torch

from backend.explain.methods.templates import LayerMethod
from backend.explain.registry import MethodSpec, register_method


class GradCAM(LayerMethod):
    def layer_map(self, call, activation, grad):
        weights = grad.mean((2, 3), keepdim=True)
        return torch.relu((weights * activation).sum(1))


register_method(
    MethodSpec(
        name="gradcam",
        label="Grad-CAM",
        differentiable=True,
        layer_based=True,
        params={"upsample": "bilinear"},
        cost="fast",
        description="Channel-weighted target-layer activations (non-negative), upsampled to the image.",
        choices={"upsample": ("bilinear", "nearest", "bicubic")},
    )
)(GradCAM())
