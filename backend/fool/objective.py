"""The fooling objective on one batch, L = L_C + lam * L_F, and the per-image FSR test losses.

Shared by the trainer, the evaluation and the speed benchmark, so that all three measure the same
thing. Heatmaps come from `backend.explain.explain` (with `create_graph=True` for the model being
fooled, so the penalty's gradient reaches the weights) and are normalised as the papers do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from backend.explain.normalize import method_map
from backend.fool.losses import Attack, classification_loss, default_normalization


@dataclass(frozen=True)
class Interpreter:
    """One explanation method with its settings and the normalisation applied before a loss."""

    method: str
    params: dict[str, Any]
    layer: str | None = None
    normalization: str | None = None
    softplus_beta: float | None = None
    train_mode: bool = False  # explain the model in its own train/eval mode (freeze_batchnorm=False)

    @property
    def norm(self) -> str:
        return self.normalization or default_normalization(self.method)

    def heatmaps(
        self, model: nn.Module, x: torch.Tensor, targets: list[torch.Tensor], *, create_graph: bool
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Normalised heatmaps, one (B, H, W) per target, and the logits of the first call."""
        from backend.explain import explain

        maps, logits = [], None
        for target in targets:
            ex = explain(
                model,
                x,
                target,
                self.method,
                create_graph=create_graph,
                softplus_beta=self.softplus_beta,
                layer=self.layer,
                train_mode=self.train_mode and create_graph,
                **self.params,
            )
            heat = method_map(ex.heatmap, ex.native, self.method, self.norm)
            maps.append(heat if create_graph else heat.detach())
            if logits is None:
                logits = ex.logits
        return maps, logits


def label_targets(labels: torch.Tensor, original_logits: torch.Tensor | None) -> torch.Tensor:
    """The class each passive attack explains: the label, or the original's prediction if unlabelled."""
    if original_logits is None:
        return labels
    return torch.where(labels >= 0, labels, original_logits.argmax(1))


def _targets_and_reference(
    original: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    original_logits: torch.Tensor | None,
    attack: Attack,
    attack_cfg: dict[str, Any],
    interpreter: Interpreter,
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """The classes to explain and what the attack needs from the frozen original's heatmaps."""
    targets = attack.targets(label_targets(labels, original_logits), attack_cfg)
    if not attack.needs_original:
        return targets, {}
    originals, _ = interpreter.heatmaps(original, x, targets, create_graph=False)
    return targets, attack.reference(originals, attack_cfg)


@dataclass
class StepResult:
    loss: torch.Tensor
    loss_c: float
    loss_f: float
    logits: torch.Tensor


def fooling_loss(
    model: nn.Module,
    original: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    attack: Attack,
    attack_cfg: dict[str, Any],
    interpreter: Interpreter,
    lam: float,
    classification: str,
    weight_norm: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> StepResult:
    """L_C + lam * L_F on one batch; `original` is the frozen copy of the model before fooling.

    L_F is the attack-weighted mean of the per-image penalties; `weight_norm(weights)` gives its
    denominator (default: the weights' sum, at least 1). A data-parallel shard passes the global
    batch's sum over the number of processes, so the averaged gradients are those of the whole batch.
    """
    needs_original_logits = classification != "labels" or bool((labels < 0).any())
    original_logits = None
    if needs_original_logits:
        with torch.no_grad():
            original_logits = original(x)
    targets, ref = _targets_and_reference(
        original, x, labels, original_logits, attack, attack_cfg, interpreter
    )
    maps, logits = interpreter.heatmaps(model, x, targets, create_graph=True)
    if logits is None or not logits.requires_grad:
        logits = model(x)
    loss_c = classification_loss(classification, logits, labels, original_logits)
    weights = attack.weights(labels, attack_cfg).to(x.device)
    per_image = attack.loss(maps, ref, attack_cfg)
    norm = weight_norm(weights) if weight_norm is not None else weights.sum().clamp_min(1.0)
    loss_f = (per_image * weights).sum() / norm
    total = loss_c + lam * loss_f
    return StepResult(total, float(loss_c.detach()), float(loss_f.detach()), logits.detach())


def per_image_test_losses(
    model: nn.Module,
    original: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    attack: Attack,
    attack_cfg: dict[str, Any],
    interpreter: Interpreter,
    batch_size: int = 32,
) -> torch.Tensor:
    """Per-image test losses t_i (Krishna2021 §4.2) of `model` against `original`, for the FSR."""
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], labels[start : start + batch_size]
        with torch.no_grad():
            original_logits = original(xb)
        targets, ref = _targets_and_reference(
            original, xb, yb, original_logits, attack, attack_cfg, interpreter
        )
        maps, _ = interpreter.heatmaps(model, xb, targets, create_graph=False)
        out.append(attack.test_loss(maps, ref, attack_cfg).detach().cpu())
    return torch.cat(out) if out else torch.empty(0)
