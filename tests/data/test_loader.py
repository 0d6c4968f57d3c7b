"""The DataLoader path: step-indexed batches (resume and data-parallel shards see the right images),
worker processes decode folder images, and the default worker count follows the CPUs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from backend.data.datasets import build_dataset
from backend.data.loader import (
    StepBatchSampler,
    batch_indices,
    default_workers,
    load_all,
    make_loader,
)
from backend.models.preprocessing import Preprocessing


def test_a_resumed_sampler_continues_at_the_same_batch():
    straight = list(StepBatchSampler(50, 8, seed=3, start=0, stop=14))
    resumed = list(StepBatchSampler(50, 8, seed=3, start=9, stop=14))
    assert resumed == straight[9:]
    assert straight[0] != straight[6]  # a new epoch (6 batches of 8 in 50) is a new permutation
    seen = sorted(i for batch in straight[:6] for i in batch)
    assert len(set(seen)) == 48  # within an epoch no image repeats


def test_shards_of_the_processes_make_up_the_global_batch():
    for step in range(5):
        whole = batch_indices(step, 40, 8, seed=1).tolist()
        shards = [StepBatchSampler(40, 8, 1, step, step + 1, rank, 4).indices(step) for rank in range(4)]
        assert [i for shard in shards for i in shard] == whole
        assert all(len(s) == 2 for s in shards)


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 255, (40, 52, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.jpg", quality=90)
    return root


def test_worker_processes_decode_the_same_tensors_as_the_main_process(jpeg_folder):
    pre = Preprocessing(size=32, resize=36)
    ds = build_dataset({"kind": "folder", "path": str(jpeg_folder)}, pre, ["a", "b"])
    sampler = StepBatchSampler(len(ds), 4, seed=0, start=0, stop=3)
    main = list(make_loader(ds, batch_sampler=sampler, num_workers=0))
    workers = list(make_loader(ds, batch_sampler=sampler, num_workers=2))
    assert len(main) == len(workers) == 3
    for (x0, y0), (x1, y1) in zip(main, workers, strict=True):
        assert x0.shape == (4, 3, 32, 32) and torch.equal(x0, x1) and torch.equal(y0, y1)
    x, y = load_all(ds, 5, "cpu", num_workers=1)
    assert x.shape == (5, 3, 32, 32) and torch.equal(x[0], ds[0][0]) and y.tolist() == [0] * 5


def test_default_workers_follow_the_cpu_count(jpeg_folder, monkeypatch):
    from backend.data import loader

    pre = Preprocessing(size=32, resize=36)
    folder = build_dataset({"kind": "folder", "path": str(jpeg_folder)}, pre)
    shapes = build_dataset({"kind": "shapes", "n": 8}, Preprocessing(size=32, resize=None))
    monkeypatch.setattr(loader, "cpu_count", lambda: 16)
    assert default_workers(folder) == 8 and default_workers(folder, world_size=2) == 7
    assert default_workers(shapes) == 0  # in memory: workers would only cost forks
    monkeypatch.setattr(loader, "cpu_count", lambda: 2)
    assert default_workers(folder) == 1
