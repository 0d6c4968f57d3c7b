"""Gradient_T: the gradient at the target layer, summed over channels, upsampled to the input."""

from backend.explain.methods.templates import LayerMethod
from backend.explain.registry import MethodSpec, register_method


class GradientT(LayerMethod):
    def layer_map(self, call, activation, grad):
        return grad.sum(1)


register_method(
    MethodSpec(
        name="gradient_t",
        label="Gradient_T",
        differentiable=True,
        layer_based=True,
        params={"upsample": "bilinear"},
        cost="fast",
        description="Gradient of the target logit at the target layer (signed, summed over channels).",
        choices={"upsample": ("bilinear", "nearest", "bicubic")},
    )
)(GradientT())
