"""SmoothGrad: the mean gradient over n noisy copies, noise std = sigma x each input's value range."""

import torch

from backend.explain.methods.templates import InputGradientMethod
from backend.explain.registry import MethodSpec, register_method


class SmoothGrad(InputGradientMethod):
    def points(self, call):
        n = int(call.params["n"])
        x = call.x.detach()
        flat = x.flatten(1)
        spread = (flat.max(1).values - flat.min(1).values).view(-1, *[1] * (x.dim() - 1))
        spread = spread * float(call.params["sigma"])
        gen = torch.Generator(device=x.device).manual_seed(int(call.params["seed"]))
        noise = torch.randn((n, *x.shape), generator=gen, device=x.device, dtype=x.dtype)
        return (x + noise * spread).reshape(-1, *x.shape[1:]), torch.full((n,), 1.0 / n)


register_method(
    MethodSpec(
        name="smoothgrad",
        label="SmoothGrad",
        differentiable=True,
        layer_based=False,
        params={"n": 16, "sigma": 0.15, "seed": 0, "batch_size": 128},
        cost="heavy",
        description="Gradient averaged over noisy copies of the input (noise level relative to its range).",
        inputs=("image", "tabular"),
        form={
            "n": {"label": "Samples", "min": 1},
            "sigma": {"label": "Noise level (share of the input range)", "min": 0.0},
            "batch_size": {"label": "Batch size", "min": 1, "advanced": True},
        },
    )
)(SmoothGrad())
