"""Gradient (SimpleGrad): dS/dx, signed, summed over channels."""

from backend.explain.methods.templates import InputGradientMethod
from backend.explain.registry import MethodSpec, register_method

SPEC = MethodSpec(
    name="gradient",
    label="Gradient",
    differentiable=True,
    layer_based=False,
    params={},
    cost="fast",
    description="Gradient of the target logit w.r.t. the input pixels (or columns).",
    inputs=("image", "tabular"),
)

register_method(SPEC)(InputGradientMethod())
