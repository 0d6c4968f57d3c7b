"""Integrated Gradients: (x - x') * mean of dS/dx along the straight path from the baseline x' to x."""

import numpy as np
import torch

from backend.explain.call import ExplainCall
from backend.explain.methods.templates import InputGradientMethod
from backend.explain.registry import MethodSpec, register_method


def path_alphas(steps: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadrature points on [0, 1] and their weights (captum's riemann_* / gausslegendre)."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return torch.tensor((nodes + 1) / 2), torch.tensor(weights / 2)
    k = torch.arange(steps, dtype=torch.float64)
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("riemann_trapezoid needs at least 2 steps")
        w = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (steps - 1)
        return k / (steps - 1), w
    offset = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[rule]
    return (k + offset) / steps, torch.full((steps,), 1.0 / steps, dtype=torch.float64)


class IntegratedGradients(InputGradientMethod):
    def _baseline(self, call: ExplainCall) -> torch.Tensor:
        return torch.full_like(call.x, float(call.params["baseline"]))

    def points(self, call):
        alphas, weights = path_alphas(int(call.params["steps"]), call.params["rule"])
        base = self._baseline(call)
        a = alphas.to(call.x).view(-1, *[1] * call.x.dim())
        pts = (base + a * (call.x - base)).reshape(-1, *call.x.shape[1:])
        return pts, weights

    def combine(self, call, grads):
        return (call.x - self._baseline(call)) * grads


register_method(
    MethodSpec(
        name="integrated_gradients",
        label="Integrated Gradients",
        differentiable=True,
        layer_based=False,
        params={"steps": 32, "baseline": 0.0, "rule": "riemann_middle", "batch_size": 128},
        cost="heavy",
        description="Path integral of gradients from a constant baseline (in normalised units) to the input.",
        choices={
            "rule": ("riemann_middle", "riemann_left", "riemann_right", "riemann_trapezoid", "gausslegendre")
        },
        inputs=("image", "tabular"),
        form={
            "steps": {"label": "Points on the path", "min": 1},
            "baseline": {"help": "The constant start of the path, in normalised units (0 = the mean)."},
            "rule": {"label": "Integration rule"},
            "batch_size": {"label": "Batch size", "min": 1, "advanced": True},
        },
    )
)(IntegratedGradients())
