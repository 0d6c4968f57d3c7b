"""PGD adversarial training, l2 and l-infinity (Madry et al.; Zeng2021 §B, Table 1's settings).

Each step attacks the batch with PGD from a random start in eval mode, then trains on the adversarial
copies; `clean_weight` mixes in the clean cross-entropy (0 = Madry's pure adversarial loss, which
Zeng2021 uses; a little clean loss keeps a fine-tuned model's clean accuracy).
"""

from __future__ import annotations

import torch.nn.functional as F

from backend.defend.params import Param
from backend.defend.pgd import pgd
from backend.defend.registry import Defence, DefenceContext, DefenceLoss, register_defence


def _pgd_params(epsilon: float, step: float, eps_max: float) -> dict[str, Param]:
    return {
        "epsilon": Param(epsilon, "radius of the attack ball, in [0, 1] pixel units", 0.0, eps_max),
        "step_size": Param(step, "PGD step (alpha), pixel units", 0.0, eps_max),
        "iterations": Param(7, "PGD iterations per training step (Zeng2021 Table 1: 20 or 40)", 1, 100),
        "random_start": Param(True, "start each attack at a random point of the ball"),
        "clean_weight": Param(0.0, "weight of the clean cross-entropy beside the adversarial one", 0.0, 1.0),
    }


class _PGDTraining(Defence):
    norm = "linf"
    source = "Zeng2021 §B (PGD-l2 / PGD-linf, Table 1)"

    def loss(self, model, x, y, ctx: DefenceContext) -> DefenceLoss:
        p = ctx.params
        x_adv = pgd(
            model,
            x,
            y,
            ctx.preprocessing,
            norm=self.norm,
            epsilon=p["epsilon"],
            step_size=p["step_size"],
            iterations=p["iterations"],
            start=p["random_start"],
        )
        adv_logits = model(x_adv)
        adv = F.cross_entropy(adv_logits, y)
        terms = {"adv_ce": float(adv.detach()), "adv_acc": float((adv_logits.argmax(1) == y).float().mean())}
        loss = (1 - p["clean_weight"]) * adv
        if p["clean_weight"] > 0:
            clean = F.cross_entropy(model(x), y)
            loss = loss + p["clean_weight"] * clean
            terms["clean_ce"] = float(clean.detach())
        return DefenceLoss(loss, terms)


@register_defence
class PGDLinf(_PGDTraining):
    name = "pgd_linf"
    label = "PGD adversarial training (l-infinity)"
    norm = "linf"
    description = "Train on PGD copies inside an l-infinity ball: the classic robust training."
    params = _pgd_params(8 / 255, 2 / 255, 1.0)


@register_defence
class PGDL2(_PGDTraining):
    name = "pgd_l2"
    label = "PGD adversarial training (l2)"
    norm = "l2"
    description = "Train on PGD copies inside an l2 ball; Zeng2021's robust model for attribution alignment."
    params = _pgd_params(0.5, 0.125, 100.0)
