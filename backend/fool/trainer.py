"""run_fooling: fine-tune a checkpoint so its explanations lie, with resumable state and a card.

The run is five phases that other loops (distributed ranks, benchmarks, other job kinds) reuse:
`prepare(cfg) -> FoolRun` (parent, frozen original, data, optimiser), `resume(run, state_dir)`,
`train_step(run, x, y)` (one optimiser step), `validate(run)` (held-out numbers) and
`finish(run)` (final validation, keep_best, the card). `run_fooling` is the plain loop over them.

Progress callback: `progress(info)` once per step with `step, total, loss, loss_c, loss_f,
images_per_s, eta_s`, and after each validation also `val` = {"accuracy", "agreement", "fsr",
"test_loss"} on held-out images. State for resuming (model, optimiser, RNG, step) is written atomically
to `state_dir` every `checkpoint_every` steps in weights-only torch format; a run given the same
`state_dir` continues from there and ends bit-for-bit where an uninterrupted run ends.

With `keep_best` the run ends with the weights of its best periodic validation (the last progress call
says which step in `kept_step`, and the card records it), kept on the CPU and in the resumable state.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend.config import get_settings
from backend.errors import InvalidConfig
from backend.fool.config import FoolConfig
from backend.fool.data import FoolingData, load_fooling_data
from backend.fool.losses import ATTACKS, Attack
from backend.fool.objective import Interpreter, fooling_loss, per_image_test_losses
from backend.metrics.fsr import fsr

Progress = Callable[[dict[str, Any]], None]
STATE_FILE = "fool_state.pt"


_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def weight_layers(model: nn.Module) -> list[list[nn.Module]]:
    """The model's layers with weights (conv, linear, ...) in order, each with the normalisation
    modules that follow it: "the first N layers" counts these, never BatchNorm on its own."""
    groups: list[list[nn.Module]] = []
    for m in model.modules():
        if not any(True for _ in m.parameters(recurse=False)):
            continue
        if isinstance(m, _NORMS) and groups:
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


def select_trainable(model: nn.Module, cfg: FoolConfig) -> list[nn.Parameter]:
    """Freeze what the config asks (frozen classifier, train only the first N layers); return the rest."""
    frozen: set[int] = set()
    if cfg.train_first_n is not None:
        for group in weight_layers(model)[cfg.train_first_n :]:
            frozen.update(id(p) for layer in group for p in layer.parameters(recurse=False))
    if cfg.freeze_classifier:
        head = getattr(model, "classifier", None) or getattr(model, "fc", None)
        if not isinstance(head, nn.Module):
            linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
            head = linears[-1] if linears else None
        if head is None:
            raise InvalidConfig("freeze_classifier: this model has no Linear classifier to freeze.")
        frozen.update(id(p) for p in head.parameters())
    trainable = []
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen)
        if id(p) not in frozen:
            trainable.append(p)
    if not trainable:
        raise InvalidConfig("Every parameter is frozen; raise train_first_n or unfreeze the classifier.")
    return trainable


def make_optimizer(params: list[nn.Parameter], cfg: FoolConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _save_state(
    state_dir: Path, model, optimizer, schedule, step: int, cfg: FoolConfig, best: _Best | None
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "best": best.to_state() if best is not None else {},
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict() if schedule is not None else {},
        "step": step,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
    }
    tmp = state_dir / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, state_dir / STATE_FILE)


@dataclass
class _Best:
    """The best periodic validation so far (for `keep_best`): its step, metrics and weights (on the CPU)."""

    step: int
    val: dict[str, float]
    weights: dict[str, torch.Tensor]

    def to_state(self) -> dict[str, Any]:
        return {"step": self.step, "val": self.val, "weights": self.weights}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Best | None:
        return cls(int(state["step"]), dict(state["val"]), state["weights"]) if state else None

    @classmethod
    def of(cls, step: int, val: dict[str, float], model: nn.Module) -> _Best:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return cls(step, dict(val), weights)


def _load_state(state_dir: Path | None, cfg: FoolConfig) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE if state_dir else None
    if path is None or not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["config"] != json.dumps(cfg.to_dict(), sort_keys=True):
        raise InvalidConfig(f"{path} holds a run with another config; delete it or give a fresh state_dir.")
    return state


def _batch_indices(step: int, n: int, batch: int, seed: int) -> torch.Tensor:
    """Batch of `step`: a fixed function of (seed, step), so a resumed run sees the same batches."""
    per_epoch = max(1, n // batch) if n >= batch else 1
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if n < batch:
        return perm
    return perm[pos * batch : (pos + 1) * batch]


def held_out_metrics(
    model: nn.Module,
    original: nn.Module,
    data: FoolingData,
    attack: Attack,
    attack_cfg: dict[str, Any],
    interpreter: Interpreter,
    batch_size: int,
    images: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, float | None]:
    """Top-1 accuracy, agreement with the original and FSR of the attack on held-out images.

    `images` = (x, labels), default the periodic validation images `data.val_*`. The FSR counts only the
    images the attack judges (Active: its D_fool, e.g. the two-object images); `fsr_images` says how
    many. With none of them, `fsr` and `test_loss` are None, never NaN; so is `accuracy` without labels.
    `n` and `n_labelled` count the images and those with labels.
    """
    x, y = images if images is not None else (data.val_x, data.val_y)
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
        pred0 = torch.cat([original(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    labelled = y >= 0
    t = per_image_test_losses(
        model,
        original,
        x,
        y,
        attack=attack,
        attack_cfg=attack_cfg,
        interpreter=interpreter,
        batch_size=batch_size,
    )
    t = t[attack.weights(y, attack_cfg).bool().cpu()]
    return {
        "accuracy": float((pred[labelled] == y[labelled]).float().mean()) if labelled.any() else None,
        "agreement": float((pred == pred0).float().mean()),
        "fsr": fsr(t, attack.name) if len(t) else None,
        "test_loss": float(t.mean()) if len(t) else None,
        "fsr_images": int(len(t)),
        "n": int(len(y)),
        "n_labelled": int(labelled.sum()),
    }


def _score(val: dict[str, Any]) -> tuple[float, float]:
    """keep_best's order: higher FSR, then higher agreement (None counts as 0)."""
    return (val.get("fsr") or 0.0, val.get("agreement") or 0.0)


@dataclass
class FoolRun:
    """Everything one fooling run holds between its phases: what `prepare` builds, `resume` restores,
    `train_step` advances and `finish` saves. A distributed rank holds one too (its shard's view)."""

    cfg: FoolConfig
    device: torch.device
    parent: Any  # the parent checkpoint's Card
    model: nn.Module
    original: nn.Module
    attack: Attack
    attack_cfg: dict[str, Any]
    interpreter: Interpreter
    data: FoolingData
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    use_amp: bool
    total: int
    step: int = 0
    best: _Best | None = None

    @property
    def judged(self) -> Interpreter:
        """The interpreter that validation and the card use: the trained one with plain ReLU maps
        (softplus is a training device, 002 §3.2.2; the thesis evaluates with ReLU)."""
        return dataclasses.replace(self.interpreter, softplus_beta=None, train_mode=False)

    def train_mode(self) -> None:
        """Training mode as configured: BatchNorm keeps its running statistics unless told otherwise."""
        self.model.train(not self.cfg.freeze_batchnorm)


def prepare(cfg: FoolConfig, registry=None) -> FoolRun:
    """Load the parent checkpoint, its frozen copy, the data and the optimiser: a run at step 0."""
    from backend.models.registry import Registry

    registry = registry or Registry()
    cfg.validate(registry)
    device = torch.device(cfg.device or get_settings().device)
    torch.manual_seed(cfg.seed)
    model, parent = registry.load(cfg.model, device=device)
    original = copy.deepcopy(model).eval().requires_grad_(False)
    attack = ATTACKS[cfg.attack]
    data = load_fooling_data(cfg, parent, device)
    attack_cfg = attack.setup(cfg.attack_params, data.size, parent.num_classes)
    interpreter = Interpreter(
        cfg.interpreter,
        dict(cfg.interpreter_params),
        cfg.layer,
        cfg.normalization,
        cfg.softplus_beta,
        train_mode=not cfg.freeze_batchnorm,
    )
    params = select_trainable(model, cfg)
    optimizer = make_optimizer(params, cfg)
    total = cfg.total_steps(len(data.train))
    schedule = (
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        )
        if cfg.lr_schedule == "cosine"
        else None
    )
    use_amp = cfg.mixed_precision and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    return FoolRun(
        cfg=cfg, device=device, parent=parent, model=model, original=original, attack=attack,
        attack_cfg=attack_cfg, interpreter=interpreter, data=data, params=params, optimizer=optimizer,
        schedule=schedule, scaler=scaler, use_amp=use_amp, total=total,
    )  # fmt: skip


def resume(run: FoolRun, state_dir: Path | None) -> FoolRun:
    """Continue from the state in `state_dir` if it holds one (model, optimiser, RNG, step, best)."""
    state = _load_state(state_dir, run.cfg)
    if state is not None:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        run.step = int(state["step"])
        if run.schedule is not None:
            run.schedule.load_state_dict(state["schedule"])
        run.best = _Best.from_state(state.get("best", {}))
    return run


def train_step(run: FoolRun, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """One optimiser step on the batch (x, y); returns its loss terms and advances `run.step`."""
    cfg = run.cfg
    run.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=run.device.type, dtype=torch.float16, enabled=run.use_amp):
        result = fooling_loss(
            run.model,
            run.original,
            x,
            y,
            attack=run.attack,
            attack_cfg=run.attack_cfg,
            interpreter=run.interpreter,
            lam=cfg.lam,
            classification=cfg.classification,
        )
    if not torch.isfinite(result.loss):
        raise InvalidConfig(
            f"The loss became {result.loss.item()} at step {run.step + 1}; lower lr or lambda."
        )
    run.scaler.scale(result.loss).backward()
    if cfg.grad_clip:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.schedule is not None:
        run.schedule.step()
    run.step += 1
    return {"loss": float(result.loss.detach()), "loss_c": result.loss_c, "loss_f": result.loss_f}


def validate(run: FoolRun) -> dict[str, float]:
    """The run's held-out numbers now (eval mode for the call, training mode restored afterwards)."""
    run.model.eval()
    try:
        return held_out_metrics(
            run.model,
            run.original,
            run.data,
            run.attack,
            run.attack_cfg,
            run.judged,
            run.cfg.batch_size,
        )
    finally:
        run.train_mode()


def finish(run: FoolRun, registry=None, progress: Progress | None = None):
    """Validate the last weights, keep the best validated ones if asked, save the fooled checkpoint."""
    from backend.models.registry import Registry

    cfg, model, data = run.cfg, run.model, run.data
    model.eval()
    chosen = run.total
    judge = (run.original, run.data, run.attack, run.attack_cfg)
    if cfg.keep_best and run.best is not None:  # chosen on the validation images...
        if _score(run.best.val) > _score(held_out_metrics(model, *judge, run.judged, cfg.batch_size)):
            model.load_state_dict(run.best.weights)
            chosen = run.best.step
    reported = (data.report_x, data.report_y)  # ...reported on others (the same ones without keep_best)
    val = held_out_metrics(model, *judge, run.judged, cfg.batch_size, images=reported)
    if cfg.softplus_beta is not None:  # what the training maps say too, when they differ from ReLU's
        soft = held_out_metrics(model, *judge, run.interpreter, cfg.batch_size, images=reported)
        val.update(fsr_softplus=soft["fsr"], test_loss_softplus=soft["test_loss"])
    if progress is not None:
        progress({"step": run.total, "total": run.total, "val": val, "done": True, "kept_step": chosen})
    model.requires_grad_(True)
    parent = run.parent
    return (registry or Registry()).save(
        model,
        name=cfg.name or f"{parent.name} fooled {cfg.attack}/{cfg.interpreter}",
        architecture=parent.architecture,
        classes=parent.classes,
        preprocessing=parent.preprocessing,
        parent=parent.id,
        kind="fooled",
        config=cfg.to_dict(),
        metrics={
            **{f"val_{k}": v for k, v in val.items()},
            "kept_step": chosen,
            "val_maps": "relu",
            **{f"val_{k}": v for k, v in data.describe().items()},
        },
    )


def run_fooling(
    config: FoolConfig | dict[str, Any],
    progress: Progress | None = None,
    state_dir: str | Path | None = None,
    registry=None,
):
    """Fool `config.model` and save the result to the registry; returns the new checkpoint's Card."""
    cfg = config if isinstance(config, FoolConfig) else FoolConfig.from_dict(config)
    state_dir = Path(state_dir) if state_dir else None
    run = resume(prepare(cfg, registry), state_dir)
    run.train_mode()
    began, done_here = time.perf_counter(), 0
    while run.step < run.total:
        idx = _batch_indices(run.step, len(run.data.train), cfg.batch_size, cfg.seed)
        x, y = run.data.batch(idx)
        info: dict[str, Any] = train_step(run, x, y)
        step, done_here = run.step, done_here + 1
        elapsed = time.perf_counter() - began
        info.update(
            step=step,
            total=run.total,
            images_per_s=done_here * len(idx) / max(elapsed, 1e-9),
            eta_s=elapsed / done_here * (run.total - step),
        )
        if cfg.val_every and step % cfg.val_every == 0 and step < run.total:
            info["val"] = validate(run)
            if cfg.keep_best and (run.best is None or _score(info["val"]) > _score(run.best.val)):
                run.best = _Best.of(step, info["val"], run.model)
        if state_dir is not None and (step % cfg.checkpoint_every == 0 or step == run.total):
            _save_state(state_dir, run.model, run.optimizer, run.schedule, step, cfg, run.best)
        if progress is not None:
            progress(info)
    return finish(run, registry, progress)
