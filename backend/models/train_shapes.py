"""Train the small shapes CNN from scratch and store it in the registry (job kind `train`).

Defaults reach >= 95% held-out accuracy in well under a minute on a 2-core CPU. `architecture:
"cifar_vgg16"` (with `size: 32`) trains the thesis's CIFAR VGG16 on the shapes instead: the CIFAR-10
images are not on this machine, so that is what the thesis presets run on here (its card says so).
Everything is drawn from the seed (data, initialisation, batch order): the same config, the same weights.

With `devices` > 1 the epochs run data-parallel (`backend.distributed`, DDP): every process draws the
same batch order and flips, takes its contiguous shard of each global batch, and BatchNorm (trained
here, in train mode) normalises with the global batch's statistics (`distributed.sync_batchnorm`);
the loss is the shard's sum over the global batch's size, so DDP's averaged gradients are those of one
process on the whole batch. Rank 0 validates, reports and saves the card.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from backend import distributed
from backend.config import get_settings
from backend.data.loader import shard
from backend.data.shapes import SHAPE_CLASSES, make_shapes
from backend.models import zoo
from backend.models.preprocessing import Preprocessing
from backend.models.registry import Card, Registry
from backend.models.train_config import _VAL_SEED_OFFSET, validate_config
from backend.progress import Progress, ProgressFn


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(
            int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
            for i in range(0, len(x), batch)
        )
    return hits / len(x)


def train_shapes_model(
    config: dict | None = None, progress: ProgressFn | None = None, registry: Registry | None = None
) -> Card:
    """Train, evaluate on held-out images, save to the registry; returns the new card."""
    cfg = validate_config(config)
    registry = registry or Registry()
    if cfg["devices"] > 1:
        return distributed.launch(run_rank, cfg, registry, progress)
    device = torch.device(cfg["device"] or get_settings().device)
    return _train(cfg, registry, device, progress)[0]


def run_rank(rank: int, config: dict, port: int, state_dir: str | None, models_root: str, events) -> None:
    """One data-parallel process (spawned by `distributed.launch`); rank 0 reports and saves."""
    world = config["devices"]
    with distributed.rank_process(rank, world, config["device"], port, events) as device:
        reporter = distributed.reporter(events, rank == 0)
        card, net = _train(config, Registry(models_root), device, reporter, rank=rank, world=world)
        if card is not None:
            distributed.done(events, card.id, net)


def _train(
    cfg: dict,
    registry: Registry,
    device: torch.device,
    progress: ProgressFn | None,
    *,
    rank: int = 0,
    world: int = 1,
) -> tuple[Card | None, torch.nn.Module]:
    """The training in this process (this rank's shard of every batch when `world` > 1); returns the
    card (None on ranks other than 0) and the trained module."""
    started = time.perf_counter()
    default = zoo.spec("shapes_cnn").preprocessing
    pre = Preprocessing(cfg["size"], None, default.mean, default.std)
    x_train, y_train, _ = make_shapes(cfg["n_train"], cfg["size"], cfg["seed"])
    x_val, y_val, _ = make_shapes(cfg["n_val"], cfg["size"], cfg["seed"] + _VAL_SEED_OFFSET)
    x_train, x_val = pre.normalize(x_train).to(device), pre.normalize(x_val).to(device)
    y_train, y_val = y_train.to(device), y_val.to(device)

    torch.manual_seed(cfg["seed"])
    model = net = zoo.build(cfg["architecture"], len(SHAPE_CLASSES)).to(device)
    if world > 1:
        net = distributed.sync_batchnorm(net, device)
        model = distributed.data_parallel(net, device, sync_buffers=True)
    g = torch.Generator().manual_seed(cfg["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    steps_per_epoch = -(-cfg["n_train"] // cfg["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg["lr"], total_steps=cfg["epochs"] * steps_per_epoch)
    metrics: dict[str, float] = {}
    for epoch in range(cfg["epochs"]):
        model.train()
        order = torch.randperm(cfg["n_train"], generator=g)
        total_loss = 0.0
        for i in range(0, cfg["n_train"], cfg["batch_size"]):
            idx = order[i : i + cfg["batch_size"]]
            flip = torch.rand(len(idx), generator=g) < 0.5  # mirror half the batch: shapes are symmetric
            mine = shard(len(idx), rank, world)  # every process drew the same order and flips
            xb, yb = x_train[idx[mine]], y_train[idx[mine]]
            xb = torch.where(flip[mine].to(device).view(-1, 1, 1, 1), xb.flip(-1), xb)
            out = model(xb)
            if world == 1:
                loss = F.cross_entropy(out, yb)
                total_loss += float(loss.detach()) * len(idx)
            else:  # the shard's part of the global batch's mean: DDP averages over the processes
                summed = F.cross_entropy(out, yb, reduction="sum")
                loss = summed * world / len(idx)
                total_loss += float(summed.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if world > 1:
            mine_sum = torch.tensor([total_loss], dtype=torch.float64, device=device)  # NCCL: on the GPU
            summed = distributed.mean_over_processes(mine_sum)
            total_loss = float(summed[0]) * world
        if rank != 0:
            continue
        metrics = {"train_loss": total_loss / cfg["n_train"], "val_accuracy": accuracy(net, x_val, y_val)}
        if progress is not None:
            done = epoch + 1
            message = f"epoch {done}/{cfg['epochs']}: val accuracy {metrics['val_accuracy']:.3f}"
            progress(Progress(done, cfg["epochs"], message, dict(metrics)))
    if rank != 0:
        return None, net
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    card = registry.save(
        net.eval(),
        name=cfg["name"],
        architecture=cfg["architecture"],
        classes=list(SHAPE_CLASSES),
        preprocessing=pre,
        kind="trained",
        config=cfg,
        metrics=metrics,
    )
    return card, net
