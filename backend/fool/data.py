"""Images for a fooling run: the training set (batches from a DataLoader whose workers decode ahead
of the loop) and held-out validation tensors (decoded by the same workers once).

Held-out images come from `val_dataset` when given, else from a seeded split of `dataset` that the
training batches never touch. A shapes spec without a size takes the checkpoint's input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from backend.data.datasets import build_dataset
from backend.data.loader import StepBatchSampler, load_all, make_loader
from backend.errors import InvalidConfig

if TYPE_CHECKING:  # only types the arguments
    from backend.fool.config import FoolConfig
    from backend.models.checkpoint import Checkpoint


@dataclass
class FoolingData:
    """Training images plus held-out tensors: `val_*` judge periodic validation; `report_*` the result.

    With `keep_best` the periodic validations choose the kept weights, so the result is reported on
    other held-out images (`report_*`, disjoint from `val_*`); otherwise both are the same images.
    `held_out` counts the held-out images available before `val_size` capped them.
    """

    train: Dataset
    val_x: torch.Tensor
    val_y: torch.Tensor
    size: int
    device: torch.device
    report_x: torch.Tensor | None = None
    report_y: torch.Tensor | None = None
    held_out: int = 0
    source: str = ""
    num_workers: int | None = None  # None = from the CPU count (none for in-memory data)

    def __post_init__(self) -> None:
        if self.report_x is None:
            self.report_x, self.report_y = self.val_x, self.val_y

    def describe(self) -> dict:
        """How many images chose the weights and reported the result, and where they came from."""
        separate = self.report_x is not self.val_x
        return {
            "report_images": int(len(self.report_x)),
            "select_images": int(len(self.val_x)) if separate else 0,
            "held_out": int(self.held_out),
            "source": self.source,
        }

    def loader(
        self, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world_size: int = 1
    ) -> DataLoader:
        """The training batches of steps start..stop-1 (this rank's shard of each global batch)."""
        sampler = StepBatchSampler(len(self.train), batch_size, seed, start, stop, rank, world_size)
        return make_loader(
            self.train,
            batch_sampler=sampler,
            num_workers=self.num_workers,
            device=self.device,
            world_size=world_size,
        )


def _spec_for(spec: dict, size: int) -> dict:
    spec = dict(spec)
    if spec.get("kind") == "shapes":
        spec.setdefault("size", size)
    return spec


def stack(
    dataset: Dataset, limit: int | None, device: torch.device, num_workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `limit` items of a dataset as (x, labels) tensors (decoded by loader workers)."""
    if len(dataset) == 0 or limit == 0:
        raise InvalidConfig("The held-out set is empty; give more images or a val_dataset.")
    return load_all(dataset, limit, device, num_workers)


def load_fooling_data(cfg: FoolConfig, checkpoint: Checkpoint, device: torch.device) -> FoolingData:
    """The checkpoint's training and held-out images, preprocessed as it wants them."""
    size = checkpoint.input_size
    pre = checkpoint.image_preprocessing
    classes = checkpoint.classes
    full = build_dataset(_spec_for(cfg.dataset, size), pre, classes)
    if cfg.val_dataset is not None:
        train, val = full, build_dataset(_spec_for(cfg.val_dataset, size), pre, classes)
        source = f"val_dataset {cfg.val_dataset.get('kind')}"
    else:
        source = f"a held-out {cfg.val_fraction:.0%} of the dataset (seed {cfg.seed + 7})"
        n = len(full)
        n_val = max(1, int(round(n * cfg.val_fraction)))
        if n - n_val < 1:
            raise InvalidConfig(f"The dataset has {n} images: too few to hold some out; add images.")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed + 7)).tolist()
        train, val = Subset(full, perm[n_val:]), Subset(full, perm[:n_val])
    if len(train) == 0:
        raise InvalidConfig("The training set is empty.")
    workers = getattr(cfg, "num_workers", None)
    if not getattr(cfg, "keep_best", False):  # other trainers (defend) reuse this loader
        val_x, val_y = stack(val, cfg.val_size, device, workers)
        return FoolingData(
            train, val_x, val_y, size, device, held_out=len(val), source=source, num_workers=workers
        )
    if len(val) < 2:
        raise InvalidConfig("keep_best needs at least 2 held-out images: some choose, others report.")
    # keep_best: the first half chooses the kept weights, the second half reports the result
    n = min(2 * cfg.val_size, len(val))
    x, y = stack(val, n, device, workers)
    half = n // 2
    return FoolingData(train, x[:half], y[:half], size, device, x[half:], y[half:], len(val), source, workers)
