"""Input attacks on saliency (Ghorbani et al., used by Decoys §4.2): top-k, target region, mass center.

Each attack takes signed steps on the *input* within an L_inf ball, through a differentiable saliency
map (the ReLUs become softplus so the map has a useful gradient), and keeps the last perturbed image
whose predicted class is still the original one. The engine differentiates maps with respect to model
parameters, so the perturbation is a parameter of a thin wrapper in front of the model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from backend.decoys.generate import Normalize
from backend.errors import InvalidConfig
from backend.models.input_range import InputRange


def _center_of_mass(h: torch.Tensor) -> torch.Tensor:
    """(B, H, W) non-negative maps -> (B, 2) row/column centre of mass in pixels."""
    hh, ww = h.shape[-2:]
    rows = torch.arange(hh, dtype=h.dtype, device=h.device)
    cols = torch.arange(ww, dtype=h.dtype, device=h.device)
    mass = h.sum((-2, -1)).clamp_min(1e-12)
    return torch.stack([(h.sum(-1) * rows).sum(-1) / mass, (h.sum(-2) * cols).sum(-1) / mass], dim=-1)


def _topk_objective(h0: torch.Tensor, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    idx = h0.flatten(1).topk(min(k, h0[0].numel()), dim=1).indices

    def objective(h: torch.Tensor) -> torch.Tensor:
        return -h.flatten(1).gather(1, idx).sum()  # lower the originally most salient pixels

    return objective


def _region_objective(h0: torch.Tensor, region: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def objective(h: torch.Tensor) -> torch.Tensor:
        return h[:, -region:, -region:].sum()  # raise the bottom-right region (paper: 4x4)

    return objective


def _mass_center_objective(h0: torch.Tensor, _: int) -> Callable[[torch.Tensor], torch.Tensor]:
    com0 = _center_of_mass(h0)

    def objective(h: torch.Tensor) -> torch.Tensor:
        return (_center_of_mass(h) - com0).norm(dim=-1).sum()  # move the centre of mass away

    return objective


# Perturbations of the *input* that move its saliency map (not to be confused with
# backend.fool.losses.FOOLING_ATTACKS, which change the model).
INPUT_ATTACKS = {
    "topk": _topk_objective,
    "target_region": _region_objective,
    "mass_center": _mass_center_objective,
}


class _Shifted(nn.Module):
    """model(normalize(x + delta)): the perturbation is a parameter, so maps are differentiable in it."""

    def __init__(self, model: nn.Module, normalize: Normalize, shape: torch.Size):
        super().__init__()
        self.inner = model
        self.normalize = normalize
        self.delta = nn.Parameter(torch.zeros(shape, device=next(model.parameters()).device))
        self.input_range = InputRange.unit(shape[-3])  # it takes pixels, so LRP's bounds are 0 and 1
        layer = getattr(model, "default_target_layer", None)
        if layer:
            self.default_target_layer = f"inner.{layer}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.normalize(x + self.delta))


def _map(shifted: _Shifted, x, target, method, beta, create_graph) -> torch.Tensor:
    from backend.explain import explain

    h = explain(shifted, x, target, method, create_graph=create_graph, softplus_beta=beta).heatmap.abs()
    return h / h.sum((-2, -1), keepdim=True).clamp_min(1e-12)


def attack_input(
    model: nn.Module,
    x: torch.Tensor,
    normalize: Normalize,
    attack: str,
    method: str = "gradient",
    epsilon: float = 8 / 255,
    steps: int = 10,
    step_size: float = 2 / 255,
    k: int | None = None,
    region: int = 4,
    softplus_beta: float = 10.0,
) -> torch.Tensor:
    """Perturb `x` (C, H, W) in [0, 1] to change its saliency map; the predicted class is kept."""
    if attack not in INPUT_ATTACKS:
        raise InvalidConfig(f"Unknown input attack {attack!r}; choose one of {sorted(INPUT_ATTACKS)}.")
    if epsilon <= 0 or steps < 1 or step_size <= 0:
        raise InvalidConfig("Attack epsilon, steps and step_size must be positive.")
    shifted = _Shifted(model, normalize, x[None].shape)
    x0 = x[None].detach()
    with torch.no_grad():
        label = shifted(x0).argmax(1)
    h0 = _map(shifted, x0, label, method, None, False).detach()
    k = k if k is not None else max(1, h0[0].numel() // 10)
    objective = INPUT_ATTACKS[attack](h0, k if attack == "topk" else region)
    kept = torch.zeros_like(x0)
    for _ in range(steps):
        value = objective(_map(shifted, x0, label, method, softplus_beta, True))
        (grad,) = torch.autograd.grad(value, shifted.delta)
        with torch.no_grad():
            step = shifted.delta + step_size * grad.sign()
            shifted.delta.copy_((x0 + step).clamp(0, 1).sub(x0).clamp(-epsilon, epsilon))
            if int(shifted(x0).argmax(1)) == int(label):
                kept = shifted.delta.detach().clone()
    return (x0 + kept)[0]
