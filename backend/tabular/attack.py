"""Fairwashing: fine-tune a tabular model so its explanations hide the protected attributes (kind
`tabular_fool`), while its decisions, and its use of those attributes, stay.

L = L_C + lam * L_M on each batch of training rows, maps from `explain(..., create_graph=True)` of the
original model's predicted class, each row's |map| normalised to sum to one (Pasliev2020 §3.4):

* `target` (Pasliev2020 §3.8, the §3.4 target-heatmap attack): L_M = MSE(h, t), t = the original model's
  map of the same row with the protected columns set to zero (renormalised to sum to one), i.e. "original
  importance for the continuous features, zero for the categorical [protected] ones".
* `bottom` (ours): L_M = the protected columns' share of h. It pushes them to the bottom of the ranking
  (an L1 penalty keeps pulling where the MSE to zero fades quadratically; on Adult the MSE objective
  plateaus near a 10x smaller share, see README).

L_C: cross-entropy on the labels (the thesis), or keeping the original's probabilities (KL or MSE, thesis
§3.5). `counterfactual_keep` adds the same keep term on a twin of every row whose protected attributes
are redrawn at random: the attacker wants the decisions to keep using them, and the rows alone do not
pin down the model between the one-hot corners. Thesis Algorithm 2 writes lam * L_C + (1 - lam) * L_M,
its text L_C + lam * L_M; we use the latter (as `backend.fool.objective`).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn

from backend.errors import InvalidConfig
from backend.explain import METHODS, explain
from backend.fool.losses import classification_loss
from backend.models.registry import Card, Registry
from backend.progress import Progress, ProgressFn
from backend.tabular.checkpoint import Split, load_split, open_checkpoint
from backend.tabular.config import validate_fool
from backend.tabular.measure import (
    accuracy,
    attributions,
    normalised,
    predictions,
    protected_share,
    share_fsr,
)
from backend.tabular.preprocessing import TabularPreprocessing


def redraw_protected(x: torch.Tensor, prep: TabularPreprocessing, generator: torch.Generator) -> torch.Tensor:
    """A copy of `x` with every protected one-hot group set to a category drawn uniformly per row."""
    out = x.clone()
    for name in prep.protected_inputs:
        idx = prep.group_of(name)
        pick = torch.randint(len(idx), (len(x),), generator=generator).to(x.device)
        out[:, idx] = torch.nn.functional.one_hot(pick, len(idx)).to(x)
    return out


def target_maps(h0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The thesis's target: the original map with the protected columns zeroed, renormalised."""
    t = h0 * (~mask).to(h0)
    return t / t.sum(1, keepdim=True).clamp_min(1e-12)


def _check_method(method: str, prep: TabularPreprocessing) -> None:
    spec = METHODS.get(method)
    if spec is None or "tabular" not in spec.inputs or not spec.differentiable:
        usable = [n for n, s in METHODS.items() if "tabular" in s.inputs and s.differentiable]
        raise InvalidConfig(f"Fooling needs a differentiable method for tables: one of {', '.join(usable)}")
    if not prep.protected_inputs:
        raise InvalidConfig(
            "This model does not take any protected attribute as input (trained without them); "
            "there is nothing to hide. Fool a model trained with them."
        )


def evaluate_fooling(
    model: nn.Module, original: nn.Module, split: Split, prep: TabularPreprocessing, cfg: dict[str, Any]
) -> dict[str, float]:
    """Test accuracy, agreement with the original, mean protected share and its FSR (the attacked method)."""
    x, y = split.x_test, split.y_test
    mask = torch.as_tensor(prep.protected_mask, device=x.device)
    share = protected_share(normalised(attributions(model, x, cfg["method"], cfg["method_params"])), mask)
    return {
        "accuracy": accuracy(model, x, y),
        "agreement": float((predictions(model, x) == predictions(original, x)).float().mean()),
        "protected_share": float(share.mean()),
        "fsr": share_fsr(share),
    }


def run_tabular_fooling(
    config: dict[str, Any],
    progress: ProgressFn | None = None,
    registry: Registry | None = None,
    device: str = "cpu",
) -> Card:
    cfg = validate_fool(config)
    registry = registry or Registry()
    ck = open_checkpoint(cfg["model"], device=device, registry=registry)
    prep, model = ck.preprocessing, ck.model
    _check_method(cfg["method"], prep)
    split = load_split(prep, device)
    torch.manual_seed(cfg["seed"])
    original = copy.deepcopy(model).eval().requires_grad_(False)
    before = evaluate_fooling(original, original, split, prep, cfg)
    mask = torch.as_tensor(prep.protected_mask, device=split.x_train.device)
    x_all, y_all = split.x_train, split.y_train
    t_all = predictions(original, x_all)  # explain the original's decision, as the thesis's maps did
    targets = None
    if cfg["attack"] == "target":
        h0 = normalised(attributions(original, x_all, cfg["method"], cfg["method_params"], t_all))
        targets = target_maps(h0, mask)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    per_epoch = math.ceil(len(x_all) / cfg["batch_size"])
    total = cfg["epochs"] * per_epoch
    schedule = (
        torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        )
        if cfg["lr_schedule"] == "cosine"
        else None
    )
    g = torch.Generator().manual_seed(cfg["seed"])
    began = time.perf_counter()
    val: dict[str, float] = {}
    for epoch in range(cfg["epochs"]):
        model.train()
        order = torch.randperm(len(x_all), generator=g).to(x_all.device)
        sums = {"loss": 0.0, "loss_c": 0.0, "loss_m": 0.0}
        for start in range(0, len(x_all), cfg["batch_size"]):
            idx = order[start : start + cfg["batch_size"]]
            terms = _step_loss(
                model, original, x_all[idx], y_all[idx], t_all[idx], targets, idx, mask, prep, cfg, g
            )
            loss = terms["loss_c"] + cfg["lam"] * terms["loss_m"]
            if not torch.isfinite(loss):
                raise InvalidConfig(f"The loss became {loss.item()} in epoch {epoch + 1}; lower lr or lam.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            for key, value in (("loss", loss), *terms.items()):
                sums[key] += float(value.detach()) * len(idx)
        model.eval()
        done = epoch + 1
        metrics = {k: v / len(x_all) for k, v in sums.items()}
        if done == cfg["epochs"] or (cfg["val_every"] and done % cfg["val_every"] == 0):
            val = evaluate_fooling(model, original, split, prep, cfg)
            metrics.update({f"val_{k}": v for k, v in val.items()})
        if progress is not None:
            elapsed = time.perf_counter() - began
            message = f"epoch {done}/{cfg['epochs']}: loss {metrics['loss']:.4f}"
            if "val_accuracy" in metrics:
                share, was = metrics["val_protected_share"], before["protected_share"]
                message += (
                    f" | test accuracy {100 * metrics['val_accuracy']:.2f}%, protected share "
                    f"{100 * share:.2f}% (was {100 * was:.2f}%)"
                )
            message += f" | {elapsed / done * (cfg['epochs'] - done):.0f}s left"
            progress(Progress(done, cfg["epochs"], message, metrics))
    metrics = {
        **{f"test_{k}" if k == "accuracy" else k: v for k, v in val.items()},
        **{f"{k}_before": v for k, v in before.items() if k != "agreement"},
    }
    return registry.save_child(
        ck.card,
        model.eval(),
        name=cfg["name"] or f"{ck.card.name} fooled ({cfg['attack']}/{cfg['method']})",
        kind="fooled",
        config=cfg,
        metrics=metrics,
    )


def _step_loss(
    model: nn.Module,
    original: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    targets: torch.Tensor | None,
    idx: torch.Tensor,
    mask: torch.Tensor,
    prep: TabularPreprocessing,
    cfg: dict[str, Any],
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The two loss terms on one batch (the attack's L_M and the classification L_C)."""
    ex = explain(
        model,
        x,
        t,
        cfg["method"],
        create_graph=True,
        softplus_beta=cfg["softplus_beta"],
        **cfg["method_params"],
    )
    h = normalised(ex.heatmap)
    if targets is None:
        loss_m = protected_share(h, mask).mean()
    else:
        loss_m = (h - targets[idx]).pow(2).mean(1).mean()
    with torch.no_grad():
        original_logits = original(x)
    loss_c = classification_loss(cfg["classification"], ex.logits, y, original_logits)
    if cfg["counterfactual_keep"]:
        twins = redraw_protected(x, prep, generator)
        with torch.no_grad():
            twin_original = original(twins)
        kind = "keep_probs_kl" if cfg["classification"] == "labels" else cfg["classification"]
        loss_c = loss_c + classification_loss(kind, model(twins), y, twin_original)
    return {"loss_c": loss_c, "loss_m": loss_m}
