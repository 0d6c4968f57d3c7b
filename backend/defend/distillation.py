"""Defensive distillation (Papernot et al. 2016; Zeng2021 §A1, T = 100), as a fine-tuning run.

Papernot trains a teacher at temperature T (softmax(logits / T) on hard labels), then a student at the
same T on the teacher's soft labels, and deploys the student at T = 1. Here both phases run on the
parent's weights in one run: for the first `teacher_fraction` of the steps the model learns at
temperature T (its logits grow about T-fold to stay confident), then its weights are frozen as the
teacher (kept in the resumable state) and the model, initialised from them, is distilled on the
teacher's soft labels at T. Distilling from the parent directly would be a no-op: a student that starts
as its teacher already matches it. Deployed at T = 1 the logits are large, the softmax saturates and
input gradients shrink: the defence masks gradients rather than removing adversarial directions (Zeng2021
notes it falls to Carlini-Wagner). The losses are multiplied by T^2 (Hinton et al.) so their gradients
keep their size as T changes.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from backend.defend.params import Param
from backend.defend.registry import Defence, DefenceContext, DefenceLoss, register_defence


@register_defence
class Distillation(Defence):
    name = "distillation"
    label = "Defensive distillation"
    source = "Zeng2021 §A1 (Papernot et al. 2016)"
    description = "Train at temperature T, then distil the result on its own softened probabilities."
    params = {
        "temperature": Param(
            100.0, "softmax temperature T of teacher and student (Zeng2021: 100)", 1.0, 1000.0
        ),
        "teacher_fraction": Param(0.5, "share of the steps that train the teacher at T", 0.0, 1.0),
    }

    def _teacher(self, model, ctx: DefenceContext):
        weights = ctx.store.get("teacher")
        if weights is None:
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            ctx.store["teacher"] = weights
        teacher = ctx.store.get("_teacher_model")
        if teacher is None:
            teacher = copy.deepcopy(ctx.parent)
            teacher.load_state_dict(weights)
            ctx.store["_teacher_model"] = teacher.eval().requires_grad_(False)
        return teacher

    def loss(self, model, x, y, ctx: DefenceContext) -> DefenceLoss:
        t = ctx.params["temperature"]
        logits = model(x)
        if ctx.step < int(round(ctx.params["teacher_fraction"] * ctx.total)):
            hard = F.cross_entropy(logits / t, y) * t * t
            return DefenceLoss(hard, {"teacher_ce": float(hard.detach()) / (t * t)})
        with torch.no_grad():
            soft = (self._teacher(model, ctx)(x) / t).softmax(1)
        distil = -(soft * (logits / t).log_softmax(1)).sum(1).mean() * t * t
        return DefenceLoss(distil, {"soft_ce": float(distil.detach()) / (t * t)})
