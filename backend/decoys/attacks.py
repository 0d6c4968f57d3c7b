"""Input attacks on saliency (Ghorbani et al., used by paper 003 §4.2): top-k, target region, mass center.

Each attack takes signed steps on the *input* within an L_inf ball, through a differentiable saliency
map (the ReLUs become softplus so the map has a useful gradient), and keeps the last perturbed image
whose predicted class is still the original one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from backend.decoys.generate import Normalize
from backend.errors import InvalidConfig


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


ATTACKS = {"topk": _topk_objective, "target_region": _region_objective, "mass_center": _mass_center_objective}


def _map(model, x, normalize, target, method, beta, create_graph):
    from backend.explain import explain

    h = explain(model, normalize(x), target, method, create_graph=create_graph, softplus_beta=beta).heatmap
    h = h.abs()
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
    if attack not in ATTACKS:
        raise InvalidConfig(f"Unknown input attack {attack!r}; choose one of {sorted(ATTACKS)}.")
    if epsilon <= 0 or steps < 1 or step_size <= 0:
        raise InvalidConfig("Attack epsilon, steps and step_size must be positive.")
    with torch.no_grad():
        label = model(normalize(x[None])).argmax(1)
    h0 = _map(model, x[None], normalize, label, method, None, False).detach()
    k = k if k is not None else max(1, h0[0].numel() // 10)
    objective = ATTACKS[attack](h0, k if attack == "topk" else region)
    kept = x[None].clone()
    cur = x[None].clone()
    for _ in range(steps):
        cur.requires_grad_(True)
        value = objective(_map(model, cur, normalize, label, method, softplus_beta, True))
        (grad,) = torch.autograd.grad(value, cur)
        with torch.no_grad():
            cur = cur + step_size * grad.sign()
            cur = torch.min(torch.max(cur, x[None] - epsilon), x[None] + epsilon).clamp(0, 1)
            if int(model(normalize(cur)).argmax(1)) == int(label):
                kept = cur.clone()
    return kept[0].detach()
