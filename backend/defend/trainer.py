"""run_defence: fine-tune a checkpoint with a registered defence, resumably, and publish a card.

One loop for every defence: the defence says what a step minimises (`Defence.loss`), the loop does the
rest as the fooling trainer does and with its helpers (the batch of step s is a fixed function of
(seed, s); the same optimiser builder). State (model, optimiser, schedule, RNG, step) is written
atomically to `state_dir` every `checkpoint_every` steps, so a cancelled or crashed run given the same
`state_dir` resumes and ends where an uninterrupted run ends. The card (kind "defended") records the
defence, its checked parameters and the parent, with clean accuracy, agreement with the parent and
the mean input-gradient norm before and after.

Progress (`backend.progress`): one `Progress(step, total, message, metrics)` per step, metrics `loss`,
the defence's named terms and `images_per_s`, and after a validation its numbers as `val_*`; a last
report (done == total) carries the final validation.

With `devices` > 1 the steps run data-parallel (`backend.distributed`, DDP): every process builds the
same run, takes its contiguous shard of each global batch and computes the defence's loss on it through
the DDP wrapper (the defence's extra forwards, PGD's attack and the input gradients included), so the
averaged gradients are the global batch's; the reported losses are means over the processes. Rank 0
validates, writes the state and saves the card. BatchNorm stays in eval mode by default; a defence
that draws random numbers (PGD's random start, ATEX's samples) draws them per process.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend import distributed
from backend.config import get_settings
from backend.defend.checkpoint import frozen, open_model
from backend.defend.config import DefendConfig
from backend.defend.defences import get_defence
from backend.defend.gradients import gradient_norm
from backend.defend.registry import DefenceContext
from backend.errors import InvalidConfig
from backend.fool.data import load_fooling_data
from backend.fool.trainer import make_optimizer
from backend.progress import Progress, ProgressFn

STATE_FILE = "defend_state.pt"


RUNTIME_SETTINGS = ("device", "devices", "num_workers")  # how the run runs: may change between attempts


def _config_key(cfg: DefendConfig) -> str:
    kept = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_SETTINGS}
    return json.dumps(kept, sort_keys=True)


def _load_state(state_dir: Path | None, cfg: DefendConfig) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE if state_dir else None
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["config"] != _config_key(cfg):
        raise InvalidConfig(f"{path} holds a run with another config; delete it or give a fresh state_dir.")
    return state


def _save_state(
    state_dir: Path, model, optimizer, schedule, step: int, cfg: DefendConfig, before, ctx: DefenceContext
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict() if schedule is not None else {},
        "step": step,
        "before": before,
        "store": {k: v for k, v in ctx.store.items() if not k.startswith("_")},
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": _config_key(cfg),
    }
    tmp = state_dir / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, state_dir / STATE_FILE)


def validate(model: nn.Module, parent: nn.Module, x: torch.Tensor, y: torch.Tensor, pre) -> dict[str, float]:
    """Clean top-1 accuracy, agreement with the parent, mean input-gradient norm on held-out images."""
    with torch.no_grad():
        pred = model(x).argmax(1)
        pred0 = parent(x).argmax(1)
    labelled = y >= 0
    return {
        "accuracy": float((pred[labelled] == y[labelled]).float().mean()) if labelled.any() else float("nan"),
        "agreement": float((pred == pred0).float().mean()),
        "grad_norm": gradient_norm(model, x, torch.where(labelled, y, pred0), pre),
    }


def step_report(step: int, total: int, metrics: dict[str, float], val: dict[str, float] | None) -> Progress:
    """One step's `Progress`: the loss terms (and the validation as `val_*`) as metrics, words as the
    message."""
    metrics = {k: float(v) for k, v in metrics.items()}
    message = f"step {step}/{total}"
    if val is not None:
        metrics.update({f"val_{k}": float(v) for k, v in val.items()})
        message += f" | val accuracy {100 * val['accuracy']:.1f}% gradient norm {val['grad_norm']:.2f}"
    return Progress(step, total, message, metrics)


def run_defence(
    config: DefendConfig | dict[str, Any],
    progress: ProgressFn | None = None,
    state_dir: str | Path | None = None,
    registry=None,
):
    """Defend `config.model` and save the result to the registry; returns the new checkpoint's Card.
    With `devices` > 1 the steps run data-parallel in that many processes (module doc)."""
    from backend.models.registry import Registry

    cfg = config if isinstance(config, DefendConfig) else DefendConfig.from_dict(config)
    registry = registry or Registry()
    cfg.validate(registry)
    if cfg.devices > 1:
        return distributed.launch(run_rank, cfg.to_dict(), registry, progress, state_dir, STATE_FILE)
    device = torch.device(cfg.device or get_settings().device)
    return _train(cfg, registry, device, state_dir, progress)[0]


def run_rank(
    rank: int, config: dict[str, Any], port: int, state_dir: str | None, models_root: str, events: Any
) -> None:
    """One data-parallel process (spawned by `distributed.launch`): the same run on this rank's shards;
    rank 0 reports progress and saves the card."""
    from backend.models.registry import Registry

    cfg = DefendConfig.from_dict(config)
    with distributed.rank_process(rank, cfg.devices, cfg.device, port, events) as device:
        lead = rank == 0
        registry = Registry(models_root)
        reporter = distributed.reporter(events, lead)
        card, net = _train(cfg, registry, device, state_dir, reporter, rank=rank, world=cfg.devices)
        if lead:
            distributed.done(events, card.id, net)


def _train(
    cfg: DefendConfig,
    registry,
    device: torch.device,
    state_dir: str | Path | None,
    progress: ProgressFn | None,
    *,
    rank: int = 0,
    world: int = 1,
):
    """The run in this process (this rank's shard of every batch when `world` > 1); returns the card
    (None on ranks other than 0) and the trained module."""
    lead = rank == 0
    state_dir = Path(state_dir) if state_dir else None
    state = _load_state(state_dir, cfg)

    torch.manual_seed(cfg.seed)
    loaded = open_model(cfg.model, device, registry)
    net, card = loaded.model, loaded.card
    parent = frozen(copy.deepcopy(net))
    defence = get_defence(cfg.defence)
    reference = None
    if defence.needs_reference:
        reference = frozen(open_model(cfg.params["reference"], device, registry).model)
    ctx = DefenceContext(loaded.preprocessing, parent, dict(cfg.params), reference)
    data = load_fooling_data(cfg, loaded, device)
    net.requires_grad_(True)
    params = list(net.parameters())
    optimizer = make_optimizer(params, cfg)
    total = int(cfg.steps)
    schedule = (
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        )
        if cfg.lr_schedule == "cosine"
        else None
    )
    start = 0
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        start = int(state["step"])
        before = dict(state["before"])
        ctx.store.update(state.get("store", {}))
    else:
        before = validate(parent, parent, data.val_x, data.val_y, ctx.preprocessing) if lead else {}
    model = distributed.data_parallel(net, device, not cfg.freeze_batchnorm) if world > 1 else net
    model.train(not cfg.freeze_batchnorm)
    began, done_here = time.perf_counter(), 0
    # workers decode ahead; this rank's shard of every global batch
    batches = iter(data.loader(cfg.batch_size, cfg.seed, start, total, rank, world))
    for step in range(start, total):
        x, y = (t.to(data.device, non_blocking=True) for t in next(batches))
        if bool((y < 0).any()):
            with torch.no_grad():
                y = torch.where(y >= 0, y, parent(x).argmax(1))  # unlabelled: the parent's decision
        optimizer.zero_grad(set_to_none=True)
        ctx.step, ctx.total = step, total
        result = defence.loss(model, x, y, ctx)
        if not torch.isfinite(result.loss):
            raise InvalidConfig(f"The loss became {result.loss.item()} at step {step + 1}; lower lr.")
        result.loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        done_here += 1
        terms = {"loss": float(result.loss.detach()), **result.terms}
        if world > 1:  # the global batch's numbers: means over the processes' shards
            values = torch.tensor(list(terms.values()), dtype=torch.float64, device=device)  # NCCL: GPU
            mean = distributed.mean_over_processes(values)
            terms = dict(zip(terms, mean.tolist(), strict=True))
        if not lead:
            continue
        elapsed = time.perf_counter() - began
        metrics = {**terms, "images_per_s": done_here * len(x) * world / max(elapsed, 1e-9)}
        val = None
        if cfg.val_every and (step + 1) % cfg.val_every == 0 and step + 1 < total:
            val = validate(net, parent, data.val_x, data.val_y, ctx.preprocessing)
            model.train(not cfg.freeze_batchnorm)
        if state_dir is not None and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == total):
            _save_state(state_dir, net, optimizer, schedule, step + 1, cfg, before, ctx)
        if progress is not None:
            progress(step_report(step + 1, total, metrics, val))
    if not lead:
        return None, net
    net.eval()
    after = validate(net, parent, data.val_x, data.val_y, ctx.preprocessing)
    if progress is not None:
        progress(step_report(total, total, {}, after))
    net.requires_grad_(True)
    metrics = {
        **{f"val_{k}": v for k, v in after.items()},
        **{f"val_{k}_before": v for k, v in before.items() if k != "agreement"},
    }
    saved = registry.save_child(
        card,
        net,
        name=cfg.name or f"{card.name} defended {cfg.defence}",
        kind="defended",
        config=cfg.to_dict(),
        metrics=metrics,
    )
    return saved, net
