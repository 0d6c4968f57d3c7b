"""Data-parallel defence training (torch.distributed, gloo, 2 CPU processes): the same weights as one
process with the same global batch and seed. The Jacobian defence differentiates the input gradient
(create_graph through the DDP wrapper) beside a second forward, so both paths are covered."""

from __future__ import annotations

import pytest

from backend.defend.trainer import run_defence
from tests.defend.conftest import short
from tests.distributed import max_weight_diff, one_and_two

pytestmark = pytest.mark.slow  # the run spawns two fresh interpreters


def test_two_processes_give_the_weights_of_one(shapes_model):
    _, base = shapes_model
    cfg = short(
        "jacobian",
        model=base.id,
        dataset={"kind": "shapes", "n": 64, "seed": 2},
        val_dataset={"kind": "shapes", "n": 16, "seed": 77},
        val_size=16,
        steps=4,
        batch_size=8,
        lr=1e-3,
        seed=5,
        device="cpu",
    )
    one, _, seen = one_and_two(run_defence, cfg, "defend (jacobian)")
    assert max_weight_diff(one.id, base.id) > 1e-4  # the run did change the weights
    assert [p.done for p in seen] == [1, 2, 3, 4, 4]
