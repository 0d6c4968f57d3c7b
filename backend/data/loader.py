"""Batches through torch's DataLoader: worker processes decode and resize, pinned memory and prefetch
keep the device fed, and a step-indexed sampler makes batch k a fixed function of (seed, k).

A fooling or training step must not wait for images: decoding a JPEG and resizing it costs about as much
as a small model's forward, so it happens in `num_workers` processes ahead of the loop (`prefetch`
batches each). The step-indexed sampler is what makes a resumed run continue at the very batch it would
have seen, and what lets N data-parallel processes take disjoint shards of the same global batch.
Datasets held in memory (synthetic shapes) gain nothing from workers and get none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

MAX_AUTO_WORKERS = 8  # more rarely helps one process; a busy machine keeps cores for the model
PREFETCH = 4  # batches each worker prepares ahead


def batch_indices(step: int, n: int, batch: int, seed: int) -> torch.Tensor:
    """The dataset indices of global batch `step`: a fixed function of (seed, step). Each epoch is a
    seeded permutation; a dataset smaller than the batch gives all of it, permuted, every step."""
    per_epoch = max(1, n // batch) if n >= batch else 1
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if n < batch:
        return perm
    return perm[pos * batch : (pos + 1) * batch]


def shard(n: int, rank: int, world_size: int) -> slice:
    """This rank's contiguous share of `n` items split over `world_size` processes (the first ranks
    take one more when `n` does not divide; a rank may get none)."""
    size, extra = divmod(n, world_size)
    start = rank * size + min(rank, extra)
    return slice(start, start + size + (rank < extra))


class StepBatchSampler(Sampler[list[int]]):
    """Yields the batches of steps `start .. stop-1` (this rank's contiguous shard of each global batch).

    `rank`/`world_size` split every global batch into equal shards, so N processes together see exactly
    the images one process would see with the same global batch and seed.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start: int = 0,
        stop: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop = start, max(start, stop)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.stop - self.start

    def indices(self, step: int) -> list[int]:
        idx = batch_indices(step, self.n, self.batch_size, self.seed)
        return idx[shard(len(idx), self.rank, self.world_size)].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.indices(step)


def in_memory(dataset: Dataset) -> bool:
    """Whether items are ready tensors already (`dataset.in_memory`), looking through Subsets."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return bool(getattr(dataset, "in_memory", False))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(dataset: Dataset, world_size: int = 1) -> int:
    """Worker processes per loader when the config leaves it open: none for in-memory data, else the
    CPUs this process's share leaves beside the main one (at least 1, at most MAX_AUTO_WORKERS)."""
    if in_memory(dataset):
        return 0
    share = cpu_count() // max(1, world_size)
    return max(1, min(MAX_AUTO_WORKERS, share - 1))


def collate_xy(items: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (B,3,H,W), labels (B,)) from dataset items `(x, label, mask)`; masks are not needed here."""
    x = torch.stack([item[0] for item in items])
    y = torch.tensor([int(item[1]) for item in items], dtype=torch.long)
    return x, y


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # a decode worker is one core; torch's own pool would oversubscribe


def make_loader(
    dataset: Dataset,
    *,
    batch_sampler: Sampler[list[int]] | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: torch.device | str = "cpu",
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader of (x, y) batches: `batch_sampler` (e.g. StepBatchSampler) or plain order in
    `batch_size` chunks; `num_workers` None = `default_workers`; pinned memory when feeding a GPU."""
    workers = default_workers(dataset, world_size) if num_workers is None else int(num_workers)
    batches = len(batch_sampler) if batch_sampler is not None else -(-len(dataset) // batch_size)
    workers = min(workers, batches)  # a worker with no batch to make is only a fork
    extra = {}
    if workers > 0:
        extra = {"prefetch_factor": PREFETCH, "worker_init_fn": _worker_init, "persistent_workers": False}
    if batch_sampler is None:
        extra["batch_size"] = batch_size
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        collate_fn=collate_xy,
        **extra,
    )


def load_all(
    dataset: Dataset,
    limit: int | None,
    device: torch.device | str,
    num_workers: int | None = None,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `limit` items (None = all) as (x, labels) tensors on `device`, decoded by the loader's
    workers (validation and evaluation sets)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    part = dataset if n == len(dataset) else Subset(dataset, range(n))
    xs, ys = [], []
    for x, y in make_loader(part, batch_size=batch_size, num_workers=num_workers, device=device):
        xs.append(x.to(device, non_blocking=True))
        ys.append(y.to(device, non_blocking=True))
    if not xs:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(xs), torch.cat(ys)
