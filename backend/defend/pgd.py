"""Projected gradient descent on the input (Madry et al., as Zeng2021 §B writes it), in pixel space.

The model consumes normalised tensors; epsilons and step sizes are in [0, 1] pixel units (Zeng2021's CIFAR
numbers: l2 radius 1.0-2.5, l-infinity 4/255-16/255), so the attack works on `denormalize(x)`, keeps
pixels in [0, 1] and feeds `normalize(x01 + delta)`. The attack runs in eval mode (running BatchNorm
statistics, no dropout), as adversarial training usually does, and restores every module's train flag.
Random numbers come from torch's global generator, which a resumable trainer saves and restores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from backend.explain.context import eval_mode

NORMS = ("l2", "linf")


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, norm: str, epsilon: float) -> torch.Tensor:
    """Onto the epsilon ball of the norm (per image)."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    return delta * (epsilon / _flat_norm(delta)).clamp(max=1.0)


def random_start(x01: torch.Tensor, norm: str, epsilon: float) -> torch.Tensor:
    """A uniform point of the l-infinity cube, or a random direction at a uniform l2 radius."""
    if norm == "linf":
        return (torch.rand_like(x01) * 2 - 1) * epsilon
    direction = torch.randn_like(x01)
    radius = torch.rand(x01.shape[0], device=x01.device).view(-1, *([1] * (x01.dim() - 1))) * epsilon
    return direction / _flat_norm(direction) * radius


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    preprocessing,
    *,
    norm: str = "linf",
    epsilon: float = 8 / 255,
    step_size: float = 2 / 255,
    iterations: int = 10,
    start: bool = True,
) -> torch.Tensor:
    """Adversarial copies of the normalised batch `x` that raise the cross-entropy of labels `y`.

    Returns normalised inputs, detached; the model's parameters get no gradient.
    """
    x01 = preprocessing.denormalize(x.detach())
    delta = random_start(x01, norm, epsilon) if start else torch.zeros_like(x01)
    delta = ((x01 + delta).clamp(0, 1) - x01).detach()
    with eval_mode(model):
        for _ in range(iterations):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(preprocessing.normalize(x01 + delta)), y)
            (grad,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                step = grad.sign() if norm == "linf" else grad / _flat_norm(grad)
                delta = project(delta + step_size * step, norm, epsilon)
                delta = (x01 + delta).clamp(0, 1) - x01
    return preprocessing.normalize(x01 + delta.detach()).detach()


def robust_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, preprocessing, *, batch_size: int = 64, **attack
) -> float:
    """Top-1 accuracy on PGD copies of labelled images (the attack's settings as keywords)."""
    keep = y >= 0
    x, y = x[keep], y[keep]
    hits = 0
    for i in range(0, len(x), batch_size):
        xa = pgd(model, x[i : i + batch_size], y[i : i + batch_size], preprocessing, **attack)
        with torch.no_grad(), eval_mode(model):
            hits += int((model(xa).argmax(1) == y[i : i + batch_size]).sum())
    return hits / max(1, len(x))
