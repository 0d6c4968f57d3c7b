"""Gradient x Input: x * dS/dx (exact attribution for linear models, zero where the input is zero)."""

import torch

from backend.explain.call import ExplainCall
from backend.explain.methods.templates import InputGradientMethod
from backend.explain.registry import MethodSpec, register_method


class GradXInput(InputGradientMethod):
    def combine(self, call: ExplainCall, grads: torch.Tensor) -> torch.Tensor:
        return call.x * grads


register_method(
    MethodSpec(
        name="grad_x_input",
        label="Gradient x Input",
        differentiable=True,
        layer_based=False,
        params={},
        cost="fast",
        description="Input times its gradient, per pixel (or column).",
        inputs=("image", "tabular"),
    )
)(GradXInput())
