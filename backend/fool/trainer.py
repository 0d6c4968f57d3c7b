"""run_fooling: fine-tune a checkpoint so its explanations lie, with resumable state and a card.

The run is five phases that other loops (distributed ranks, benchmarks, other job kinds) reuse:
`prepare(cfg) -> FoolRun` (parent, frozen original, data, optimiser), `resume(run, state_dir)`,
`train_step(run, x, y)` (one optimiser step), `validate(run)` (held-out numbers) and
`finish(run)` (final validation, keep_best, the card). `train_loop` drives the steps; `run_fooling`
is prepare + resume + train_loop + finish in this process, or over `devices` data-parallel processes
(`backend.distributed`).

Progress: `run_fooling(progress=...)` takes the one protocol's `ProgressFn` (`backend.progress`): a
`Progress` per step with the curves and `val_*` as metrics, the message in words (`validation_text`),
and the phases' own `info` dict as `extra` (`step, total, loss, loss_c, loss_f, images_per_s,
data_wait` (the share of the run's time spent waiting for batches), `eta_s`, after each validation
`val`, a data-parallel run adds `rank_pids` and `devices`). Inside, the phases pass that plain dict
(it crosses process boundaries in a data-parallel run); `step_report(info)` makes the `Progress` at the
one edge, `run_fooling`.
Batches come from a DataLoader (`backend.data.loader`) whose batch k is a fixed function of (seed, k).
Resumable state (model, optimiser, RNG, step, the best validation so far) is written by time, at the
end and optionally every N steps, by a background thread (`backend.fool.state`); a run given the same
`state_dir` continues from there and ends where an uninterrupted run ends.

With `keep_best` the run ends with the weights of its best periodic validation (the last report's
message names the step, and the card records it as `kept_step`); those weights wait on disk, not in
RAM.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend import distributed
from backend.config import get_settings
from backend.errors import InvalidConfig
from backend.fool.config import FoolConfig
from backend.fool.data import FoolingData, load_fooling_data
from backend.fool.losses import FOOLING_ATTACKS, Attack
from backend.fool.objective import Interpreter, fooling_loss, per_image_test_losses
from backend.fool.precision import Precision, precision_for
from backend.fool.state import STATE_FILE, StatePolicy, StateWriter, host_copy, load_best, load_state
from backend.metrics.fsr import fsr
from backend.progress import Progress, ProgressFn

Info = Callable[[dict[str, Any]], None]  # the phases' internal per-step report (see the module doc)
_CURVE_KEYS = ("loss", "loss_c", "loss_f", "images_per_s", "data_wait")
# how many images a validation used: in the message, not on the curves
_COUNTS = ("n", "n_labelled", "fsr_images")


def validation_text(val: dict[str, float]) -> str:
    """A validation a class can read: the fooling rate, then agreement with the original model (what
    "the predictions stay right" means), and accuracy only where labels are known, with the counts.
    E.g. "FSR 100.0% · same prediction as the original on 65.0% of 40 images · accuracy 80.0% on the
    5 with known labels"."""
    n, known = int(val.get("n", 0)), int(val.get("n_labelled", 0))
    if val.get("fsr") is None:
        text = "FSR n/a (none of these images is one the attack is judged on)"
    else:
        text = f"FSR {100 * val['fsr']:.1f}%"
    if "agreement" in val:
        text += f" · same prediction as the original on {100 * val['agreement']:.1f}%"
        text += f" of {n} images" if n else ""
    if known and val.get("accuracy") is not None:
        text += f" · accuracy {100 * val['accuracy']:.1f}% on the {known} with known labels"
    return text


def step_report(info: dict[str, Any]) -> Progress:
    """The `Progress` of one step's `info`: the curves' numbers and the validation (as `val_*`) as
    metrics, the step and the validation in words as the message."""
    metrics = {k: float(info[k]) for k in _CURVE_KEYS if k in info}
    metrics.update(
        {
            f"val_{k}": float(v)
            for k, v in info.get("val", {}).items()
            if k not in _COUNTS and isinstance(v, int | float)
        }
    )
    total = info.get("total") or 1
    message = f"step {info['step']}/{total}"
    if "val" in info:
        message += f" | validation: {validation_text(info['val'])}"
    if info.get("kept_step", total) != total:
        message += f" | kept the weights of step {info['kept_step']} (best validation)"
    return Progress(int(info["step"]), int(total), message, metrics, info)


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
    judged = attack.weights(y, attack_cfg).bool()  # only these images' maps are needed
    t = per_image_test_losses(
        model,
        original,
        x[judged],
        y[judged],
        attack=attack,
        attack_cfg=attack_cfg,
        interpreter=interpreter,
        batch_size=batch_size,
    )
    return {
        "accuracy": float((pred[labelled] == y[labelled]).float().mean()) if labelled.any() else None,
        "accuracy_drop": accuracy_drop(pred, pred0, y, attack.guarded_classes(attack_cfg)),
        "agreement": float((pred == pred0).float().mean()),
        "fsr": fsr(t, attack.criterion(attack_cfg)) if len(t) else None,
        "test_loss": float(t.mean()) if len(t) else None,
        "fsr_images": int(len(t)),
        "n": int(len(y)),
        "n_labelled": int(labelled.sum()),
    }


def accuracy_drop(
    pred: torch.Tensor, pred0: torch.Tensor, labels: torch.Tensor, guarded: list[int]
) -> float | None:
    """How far the accuracy fell below the original's on the labelled images: the worst of the guarded
    classes' own accuracies (Active: c1, c2), or top-1 when the attack guards none. None without labels."""
    groups = [labels == c for c in guarded] or [labels >= 0]
    drops = [
        float((pred0[g] == labels[g]).float().mean() - (pred[g] == labels[g]).float().mean())
        for g in groups
        if g.any()
    ]
    return max(drops) if drops else None


def _score(val: dict[str, Any], limit: float | None = None) -> tuple[bool, float, float, float]:
    """keep_best's order: within the accuracy limit (when there is one and the validation measured it),
    then higher FSR, then higher agreement (None counts as 0). When no validation is within the limit,
    the smallest accuracy loss comes first: the user's limit says accuracy matters more than the map (a
    seed-11 Active run otherwise kept its step-300 weights at -22 points for FSR 95%)."""
    drop = val.get("accuracy_drop")
    within = limit is None or drop is None or drop <= limit + 1e-9
    excess = 0.0 if within else -float(drop)
    return (within, excess, val.get("fsr") or 0.0, val.get("agreement") or 0.0)


@dataclass
class Best:
    """The best periodic validation so far (for `keep_best`); its weights are best-<step>.safetensors."""

    step: int
    val: dict[str, Any]

    def beaten_by(self, val: dict[str, Any], limit: float | None = None) -> bool:
        return _score(val, limit) > _score(self.val, limit)


@dataclass
class FoolRun:
    """Everything one fooling run holds between its phases: what `prepare` builds, `resume` restores,
    `train_step` advances and `finish` saves. A data-parallel process holds one for its shard: `model`
    is then the DistributedDataParallel wrapper the loss runs through, `net` the plain module."""

    cfg: FoolConfig
    device: torch.device
    parent: Any  # the parent checkpoint's Card
    net: nn.Module
    original: nn.Module
    attack: Attack
    attack_cfg: dict[str, Any]
    interpreter: Interpreter
    data: FoolingData
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    precision: Precision
    scaler: torch.amp.GradScaler
    total: int
    model: nn.Module | None = None
    step: int = 0
    best: Best | None = None
    rank: int = 0
    world_size: int = 1
    folder: Path | None = None  # where state and best weights go: the state_dir, or a temp folder
    temporary: bool = False
    writer: StateWriter | None = None
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None  # mean over processes (data-parallel)

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = self.net

    @property
    def judged(self) -> Interpreter:
        """The interpreter that validation and the card use: the trained one with plain ReLU maps
        (softplus is a training device, Pasliev2020 §3.2.2; the thesis evaluates with ReLU)."""
        return dataclasses.replace(self.interpreter, softplus_beta=None, train_mode=False)

    @property
    def lead(self) -> bool:
        """The process that validates, writes state and saves the card (rank 0)."""
        return self.rank == 0

    def train_mode(self) -> None:
        """Training mode as configured: BatchNorm keeps its running statistics unless told otherwise."""
        self.model.train(not self.cfg.freeze_batchnorm)

    def close(self, raise_errors: bool = True) -> None:
        """Wait for the state writer (what was submitted is on disk afterwards); drop a temp folder."""
        try:
            if self.writer is not None:
                writer, self.writer = self.writer, None
                try:
                    writer.close()
                except RuntimeError:
                    if raise_errors:
                        raise
        finally:
            if self.temporary and self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)
                self.folder = None


def prepare(
    cfg: FoolConfig, registry=None, *, device: torch.device | None = None, rank: int = 0, world_size: int = 1
) -> FoolRun:
    """Load the parent checkpoint, its frozen copy, the data and the optimiser: a run at step 0."""
    from backend.models.registry import Registry

    registry = registry or Registry()
    cfg.validate(registry)
    device = device or torch.device(cfg.device or get_settings().device)
    precision = precision_for(device, cfg.mixed_precision, cfg.interpreter)
    torch.manual_seed(cfg.seed)
    checkpoint = registry.get(cfg.model, device=device)
    parent = checkpoint.card
    model = checkpoint.fresh_model()  # private: it is trained
    original = copy.deepcopy(model).eval().requires_grad_(False)
    attack = FOOLING_ATTACKS[cfg.attack]
    data = load_fooling_data(cfg, checkpoint, device)
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
    return FoolRun(
        cfg=cfg, device=device, parent=parent, net=model, original=original, attack=attack,
        attack_cfg=attack_cfg, interpreter=interpreter, data=data, params=params, optimizer=optimizer,
        schedule=schedule, precision=precision, scaler=precision.scaler(), total=total, rank=rank,
        world_size=world_size,
    )  # fmt: skip


def resume(run: FoolRun, state_dir: str | Path | None) -> FoolRun:
    """Continue from the state in `state_dir` if it holds one (model, optimiser, RNG, step, best), and
    start the lead process's state writer there (a temp folder holds keep_best weights without one)."""
    folder = Path(state_dir) if state_dir else None
    state = load_state(folder, run.cfg.resume_key())
    if state is not None:
        run.net.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        run.step = int(state["step"])
        if run.schedule is not None:
            run.schedule.load_state_dict(state["schedule"])
        if state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])
        best = state.get("best") or {}
        run.best = Best(int(best["step"]), dict(best["val"])) if best else None
    if run.lead and (folder is not None or run.cfg.keep_best):
        run.temporary = folder is None
        run.folder = folder or Path(tempfile.mkdtemp(prefix="fool-best-"))
        run.writer = StateWriter(run.folder, referenced=run.best.step if run.best is not None else None)
    return run


def save_state(run: FoolRun) -> None:
    """Hand a host-memory copy of the state to the writer thread (the only part that blocks the loop)."""
    if run.writer is None or run.temporary:
        return
    best = {"step": run.best.step, "val": run.best.val} if run.best is not None else {}
    run.writer.submit_state(
        host_copy(
            {
                "model": run.net.state_dict(),
                "best": best,
                "optimizer": run.optimizer.state_dict(),
                "schedule": run.schedule.state_dict() if run.schedule is not None else {},
                "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else {},
                "step": run.step,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "key": run.cfg.resume_key(),
            }
        )
    )


def train_step(run: FoolRun, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """One optimiser step on the batch (x, y); returns its loss terms and advances `run.step`.

    Data-parallel: x is this process's shard; the attack weights are normalised over the global batch
    and the reported losses are means over the processes, so the numbers are those of one process.
    """
    cfg = run.cfg
    run.optimizer.zero_grad(set_to_none=True)
    with run.precision.autocast():
        result = fooling_loss(
            run.model,
            run.original,
            x,
            y,
            attack=run.attack,
            attack_cfg=run.attack_cfg,
            interpreter=run.interpreter,
            lam=cfg.lam_at(run.step),
            classification=cfg.classification,
            weight_norm=_global_weight_norm(run) if run.world_size > 1 else None,
        )
    terms = torch.tensor([float(result.loss.detach()), result.loss_c, result.loss_f], device=run.device)
    if run.reduce is not None:
        terms = run.reduce(terms)
    loss, loss_c, loss_f = (float(v) for v in terms)
    if not math.isfinite(loss):
        raise InvalidConfig(f"The loss became {loss} at step {run.step + 1}; lower lr or lambda.")
    run.scaler.scale(result.loss).backward()
    if cfg.grad_clip:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.schedule is not None:
        run.schedule.step()
    run.step += 1
    return {"loss": loss, "loss_c": loss_c, "loss_f": loss_f}


def _global_weight_norm(run: FoolRun) -> Callable[[torch.Tensor], torch.Tensor]:
    """The fooling term's denominator for one shard: the global batch's attack-weight sum divided by the
    number of processes, so the averaged gradients equal those of one process on the whole batch."""
    world, reduce = run.world_size, run.reduce
    assert reduce is not None

    def norm(weights: torch.Tensor) -> torch.Tensor:
        total = reduce(weights.sum().detach().float().reshape(1))[0] * world
        return total.clamp_min(1.0) / world

    return norm


def validate(run: FoolRun) -> dict[str, float]:
    """The run's held-out numbers now (eval mode for the call, training mode restored afterwards)."""
    run.net.eval()
    try:
        return held_out_metrics(
            run.net,
            run.original,
            run.data,
            run.attack,
            run.attack_cfg,
            run.judged,
            run.cfg.device_batch,
        )
    finally:
        run.train_mode()


def train_loop(run: FoolRun, progress: Info | None = None) -> None:
    """Steps from `run.step` to the end: batches from the loader, validation and keep_best, state by
    time, a progress report per step (on the lead process)."""
    cfg = run.cfg
    policy = StatePolicy(cfg.state_every_s, cfg.checkpoint_every, run.total)
    loader = run.data.loader(cfg.batch_size, cfg.seed, run.step, run.total, run.rank, run.world_size)
    batches = iter(loader)
    run.train_mode()
    began, waited, done_here, images = time.perf_counter(), 0.0, 0, 0
    while run.step < run.total:
        asked = time.perf_counter()
        x, y = next(batches)
        x = x.to(run.device, non_blocking=True)
        y = y.to(run.device, non_blocking=True)
        waited += time.perf_counter() - asked
        info: dict[str, Any] = train_step(run, x, y)
        step, done_here, images = run.step, done_here + 1, images + x.shape[0] * run.world_size
        if not run.lead:
            continue
        elapsed = time.perf_counter() - began
        info.update(
            step=step,
            total=run.total,
            images_per_s=images / max(elapsed, 1e-9),
            data_wait=waited / max(elapsed, 1e-9),
            eta_s=elapsed / done_here * (run.total - step),
        )
        if cfg.val_every and step % cfg.val_every == 0 and step < run.total:
            info["val"] = validate(run)
            if cfg.keep_best and (run.best is None or run.best.beaten_by(info["val"], cfg.max_accuracy_drop)):
                run.best = Best(step, info["val"])
                assert run.writer is not None
                run.writer.submit_best(step, host_copy(run.net.state_dict()))
        if policy.due(step):
            save_state(run)
        if progress is not None:
            progress(info)


def finish(run: FoolRun, registry=None, progress: Info | None = None):
    """Validate the last weights, keep the best validated ones if asked, save the fooled checkpoint."""
    from backend.models.registry import Registry

    cfg, model, data = run.cfg, run.net, run.data
    model.eval()
    chosen, batch = run.total, cfg.device_batch
    judge = (run.original, run.data, run.attack, run.attack_cfg)
    if cfg.keep_best and run.best is not None:  # chosen on the validation images...
        last = held_out_metrics(model, *judge, run.judged, batch)
        if _score(run.best.val, cfg.max_accuracy_drop) > _score(last, cfg.max_accuracy_drop):
            assert run.writer is not None and run.folder is not None
            run.writer.flush()
            model.load_state_dict(load_best(run.folder, run.best.step))
            chosen = run.best.step
    reported = (data.report_x, data.report_y)  # ...reported on others (the same ones without keep_best)
    val = held_out_metrics(model, *judge, run.judged, batch, images=reported)
    if cfg.softplus_beta is not None:  # what the training maps say too, when they differ from ReLU's
        soft = held_out_metrics(model, *judge, run.interpreter, batch, images=reported)
        val.update(fsr_softplus=soft["fsr"], test_loss_softplus=soft["test_loss"])
    if progress is not None:
        progress({"step": run.total, "total": run.total, "val": val, "done": True, "kept_step": chosen})
    model.requires_grad_(True)
    parent = run.parent
    return (registry or Registry()).save_child(
        parent,
        model,
        name=cfg.name or f"{parent.name} fooled {cfg.attack}/{cfg.interpreter}",
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
    progress: ProgressFn | None = None,
    state_dir: str | Path | None = None,
    registry=None,
):
    """Fool `config.model` and save the result to the registry; returns the new checkpoint's Card.
    `progress(Progress)` per step and once at the end (the module doc).
    With `devices` > 1 the steps run data-parallel in that many processes (`backend.distributed`)."""
    cfg = config if isinstance(config, FoolConfig) else FoolConfig.from_dict(config)
    if cfg.devices > 1:
        return _run_data_parallel(cfg, progress, state_dir, registry)
    inner: Info | None = None if progress is None else (lambda info: progress(step_report(info)))
    run = resume(prepare(cfg, registry), state_dir)
    try:
        train_loop(run, inner)
        return finish(run, registry, inner)
    except BaseException:
        run.close(raise_errors=False)
        raise
    finally:
        run.close()


def _run_data_parallel(cfg: FoolConfig, progress: ProgressFn | None, state_dir, registry):
    from backend.models.registry import Registry

    registry = registry or Registry()
    cfg.validate(registry)
    return distributed.launch(run_rank, cfg.to_dict(), registry, progress, state_dir, STATE_FILE)


def run_rank(
    rank: int, config: dict[str, Any], port: int, state_dir: str | None, models_root: str, events: Any
) -> None:
    """One data-parallel process (spawned by `distributed.launch`): prepare the same run, wrap the
    model in DDP, train this rank's shards; rank 0 reports progress and finishes the run."""
    from backend.models.registry import Registry

    cfg = FoolConfig.from_dict(config)
    with distributed.rank_process(rank, cfg.devices, cfg.device, port, events) as device:
        registry = Registry(models_root)
        run = prepare(cfg, registry, device=device, rank=rank, world_size=cfg.devices)
        run.model = distributed.data_parallel(run.net, device, sync_buffers=not cfg.freeze_batchnorm)
        run.reduce = distributed.mean_over_processes
        run = resume(run, state_dir)
        out = distributed.reporter(events, run.lead)
        report: Info | None = None if out is None else (lambda info: out(step_report(info)))
        try:
            train_loop(run, report)
            if run.lead:
                card = finish(run, registry, report)
                distributed.done(events, card.id, run.net)
        finally:
            run.close()
