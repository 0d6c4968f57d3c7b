"""ATEX, adversarial training on explanations (Tang2022), as we read it.

A manipulated model keeps its predictions at the data but turns its input gradients; what turns is the
local curvature of the decision function. ATEX constrains the *predictions* at points near each image
instead of the explanation values, so no second-order derivatives are needed (the Jacobian and the
alignment defences differentiate through a gradient; this one does not). Here: the label logit's input
gradient g (one first-order backward, detached) gives the direction in which the prediction moves; n
points x + d are drawn with d orthogonal to g at l2 radius epsilon (pixels), where to first order the
prediction must not move, and the model's probabilities there are pulled to its (detached) probabilities
at x: L = CE(x) + lambda * mean KL(p(x) || p(x + d)). What remains of the change is curvature, which
is what an explanation manipulation needs. `pick="worst"` keeps, per image, the sample that moved the
prediction most (the adversarial flavour), at the same cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from backend.defend.gradients import pixel_gradient
from backend.defend.params import Param
from backend.defend.registry import Defence, DefenceContext, DefenceLoss, register_defence


def orthogonal_samples(g: torch.Tensor, n: int, epsilon: float) -> torch.Tensor:
    """(n, B, ...) random directions orthogonal to each g (per image), of l2 norm epsilon."""
    flat = g.flatten(1)
    unit = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
    d = torch.randn((n, *flat.shape), dtype=g.dtype, device=g.device)
    d = d - (d * unit).sum(-1, keepdim=True) * unit
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12) * epsilon
    return d.view(n, *g.shape)


@register_defence
class ATEX(Defence):
    name = "atex"
    label = "ATEX (adversarial training on explanations)"
    source = "Tang2022"
    description = "Keep predictions still at points beside the data, orthogonal to the gradient."
    params = {
        "epsilon": Param(1.0, "l2 radius of the sampled points, in [0, 1] pixel units", 0.0, 100.0),
        "samples": Param(4, "points per image and step", 1, 64),
        "lam": Param(1.0, "weight of the prediction-consistency term", 0.0, 1e4),
        "pick": Param(
            "mean", "average over the points, or keep the worst point per image", choices=("mean", "worst")
        ),
    }

    def loss(self, model, x, y, ctx: DefenceContext) -> DefenceLoss:
        p = ctx.params
        pre = ctx.preprocessing
        x01 = pre.denormalize(x.detach())
        g = pixel_gradient(model, x, y, pre, create_graph=False).detach()
        d = orthogonal_samples(g, p["samples"], p["epsilon"])
        near = pre.normalize((x01[None] + d).clamp(0, 1).flatten(0, 1))
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        target = logits.detach().log_softmax(1).repeat(p["samples"], 1)
        kl = F.kl_div(model(near).log_softmax(1), target, log_target=True, reduction="none").sum(1)
        kl = kl.view(p["samples"], -1)
        per_image = kl.max(0).values if p["pick"] == "worst" else kl.mean(0)
        consistency = per_image.mean()
        loss = ce + p["lam"] * consistency
        return DefenceLoss(loss, {"ce": float(ce.detach()), "kl": float(consistency.detach())})
