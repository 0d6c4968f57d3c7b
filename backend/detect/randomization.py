"""Cascading randomisation sanity check (Adebayo et al. 2018; Decoys A8): re-initialise the layers
from the top down, one more at each step, and compare each step's heatmaps with the original ones.

A method that explains the model must lose similarity as the learned weights are destroyed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from backend.detect.heatmaps import predictions, scaled_heatmaps
from backend.metrics import similarity
from backend.progress import ProgressFn, report


def parametric_layers(model: nn.Module) -> list[str]:
    """Names of leaf modules with weights, top (output) first: the order in which they are destroyed."""
    names = [
        name
        for name, m in model.named_modules()
        if name and not list(m.children()) and any(True for _ in m.parameters(recurse=False))
    ]
    return names[::-1]


def _reinitialise(module: nn.Module, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:  # a module without its own initialiser: fresh Gaussian weights of the same scale
            with torch.no_grad():
                for p in module.parameters(recurse=False):
                    p.normal_(0, float(p.std()) if p.numel() > 1 else 1.0)


def cascading_randomization(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "gradient",
    seed: int = 0,
    progress: ProgressFn | None = None,
    **params,
) -> dict:
    """Per step (layer destroyed, cumulative from the top): mean SSIM and Spearman to the original maps."""
    target = predictions(model, x)
    original = scaled_heatmaps(model, x, target, method, **params)
    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    layers = parametric_layers(work)
    steps = [{"layer": "original", "ssim": 1.0, "spearman": 1.0}]
    for i, name in enumerate(layers):
        _reinitialise(modules[name], seed + i)
        maps = scaled_heatmaps(work, x, target, method, **params)
        steps.append(
            {
                "layer": name,
                "ssim": float(similarity.ssim(maps, original, data_range=1.0).mean()),
                "spearman": float(similarity.spearman(maps, original).mean()),
            }
        )
        report(progress, i + 1, len(layers), f"randomised {name}")
    return {"method": method, "steps": steps}
