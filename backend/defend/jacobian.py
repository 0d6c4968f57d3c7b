"""Jacobian (input-gradient) regularisation (Ross and Doshi-Velez 2018; Zeng2021 §A2, lambda = 0.5).

L = CE + lambda * ||g||^2 per image, averaged, g in [0, 1] pixel units. Zeng2021 writes g as the loss's
input gradient; the default here (`target="logit"`) is the label logit's gradient taken through the
explanation engine, i.e. the very Gradient saliency map the lab shows and the fooling attacks move:
small, smooth logit gradients are what makes a map hard to push around. `target="loss"` is Zeng2021's
formula. Both differentiate twice (create_graph), which makes a step several times a plain one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from backend.defend.gradients import pixel_gradient
from backend.defend.params import Param
from backend.defend.registry import Defence, DefenceContext, DefenceLoss, register_defence


@register_defence
class Jacobian(Defence):
    name = "jacobian"
    label = "Jacobian regularisation"
    source = "Zeng2021 §A2 (Ross and Doshi-Velez 2018)"
    description = "Penalise the squared norm of the input gradient (the Gradient saliency map)."
    params = {
        "lam": Param(0.5, "weight lambda of the squared gradient norm (Zeng2021: 0.5)", 0.0, 1e4),
        "target": Param(
            "logit",
            "gradient of the label's logit (the saliency map) or of the loss (Zeng2021)",
            choices=("logit", "loss"),
        ),
    }

    def loss(self, model, x, y, ctx: DefenceContext) -> DefenceLoss:
        if ctx.params["target"] == "logit":
            grad = pixel_gradient(model, x, y, ctx.preprocessing, create_graph=True)
            logits = model(x)
            ce = F.cross_entropy(logits, y)
        else:
            x01 = ctx.preprocessing.denormalize(x.detach()).requires_grad_(True)
            ce = F.cross_entropy(model(ctx.preprocessing.normalize(x01)), y)
            (grad,) = torch.autograd.grad(ce, x01, create_graph=True)
        penalty = grad.flatten(1).pow(2).sum(1).mean()
        loss = ce + ctx.params["lam"] * penalty
        return DefenceLoss(loss, {"ce": float(ce.detach()), "grad_sq": float(penalty.detach())})
