"""Robust attribution alignment (Zeng2021): train the model's saliency maps toward those of a PGD-l2
adversarially trained model, while keeping its predictions.

L = CE + lambda * mean_i (1 - cos(g_i, r_i)), with g_i the model's Gradient map of image i (through the
explanation engine, create_graph) and r_i the reference model's (frozen). Which loss: the supplement we
hold (Zeng2021) says only that the attributions are aligned with a PGD-l2 model's saliency maps, not the
loss. We use the cosine distance because it is scale-free: a robust model's input gradients are much
smaller than an ordinary model's, so an MSE would mostly ask for smaller gradients (the Jacobian
defence) instead of the robust model's *shape*; the cosine asks only for the shape. Signed (B, C, H, W)
gradients are compared, so signs and colour channels must align too.
"""

from __future__ import annotations

import torch.nn.functional as F

from backend.defend.gradients import pixel_gradient
from backend.defend.params import Param
from backend.defend.registry import Defence, DefenceContext, DefenceLoss, register_defence


@register_defence
class Alignment(Defence):
    name = "alignment"
    label = "Robust attribution alignment"
    source = "Zeng2021 (align with a PGD-l2 model's saliency)"
    description = "Pull the Gradient maps toward those of a PGD-l2-trained reference model."
    needs_reference = True
    params = {
        "reference": Param(None, "checkpoint id of the PGD-l2-trained model whose maps are the target"),
        "lam": Param(1.0, "weight of the cosine distance between the two models' gradient maps", 0.0, 1e4),
    }

    def loss(self, model, x, y, ctx: DefenceContext) -> DefenceLoss:
        assert ctx.reference is not None, "the trainer loads params.reference"
        target = pixel_gradient(ctx.reference, x, y, ctx.preprocessing, create_graph=False).detach()
        grad = pixel_gradient(model, x, y, ctx.preprocessing, create_graph=True)
        cos = F.cosine_similarity(grad.flatten(1), target.flatten(1), dim=1, eps=1e-12)
        ce = F.cross_entropy(model(x), y)
        distance = (1 - cos).mean()
        loss = ce + ctx.params["lam"] * distance
        return DefenceLoss(loss, {"ce": float(ce.detach()), "cos": float(cos.mean().detach())})
