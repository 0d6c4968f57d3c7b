"""Data-parallel training of the shapes CNN (torch.distributed, gloo, 2 CPU processes): the same
weights as one process with the same global batch and seed. BatchNorm trains here (train mode), so
this also checks that its statistics are the global batch's (`distributed.GlooSyncBatchNorm`), and an
uneven last batch (n_train 90 over batches of 16) that the loss still weighs as one process does.
Measured: 4.8e-7 in float32 after these 6 Adam steps (the same code in float64, two epochs: 6.7e-14, so
what is left is rounding, which Adam amplifies where a gradient is near zero)."""

from __future__ import annotations

import pytest

from backend.models.train_shapes import train_shapes_model
from tests.distributed import one_and_two

pytestmark = pytest.mark.slow  # the run spawns two fresh interpreters


def test_two_processes_give_the_weights_of_one(isolated_lab):
    cfg = {"seed": 3, "size": 32, "n_train": 90, "n_val": 20, "epochs": 1, "batch_size": 16, "device": "cpu"}
    one, two, seen = one_and_two(train_shapes_model, cfg, "train")
    assert [p.done for p in seen] == [1]
    assert abs(two.metrics["train_loss"] - one.metrics["train_loss"]) < 1e-5
    assert two.metrics["val_accuracy"] == one.metrics["val_accuracy"]
