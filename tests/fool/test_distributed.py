"""Data-parallel fooling (torch.distributed, gloo, 2 CPU processes): the same weights as one process
with the same global batch and seed; a killed process fails the run with a clear message, and the
retried run resumes from the last state."""

from __future__ import annotations

import os
import re
import signal

import pytest

from backend.errors import DistributedRunFailed
from backend.fool.trainer import run_fooling
from tests.distributed import max_weight_diff

pytestmark = pytest.mark.slow  # each run spawns two fresh interpreters


def _cfg(card_id: str, **kw) -> dict:
    base = {
        "model": card_id,
        "dataset": {"kind": "shapes", "n": 64, "seed": 4},
        "attack": "location",
        "interpreter": "gradcam",
        "steps": 6,
        "batch_size": 8,
        "lr": 1e-3,
        "lam": 5.0,
        "val_size": 8,
        "seed": 3,
        "device": "cpu",
    }
    return {**base, **kw}


@pytest.fixture(scope="module")
def single(shapes_model):
    _, card = shapes_model
    return run_fooling(_cfg(card.id))


def test_two_processes_give_the_weights_of_one(shapes_model, single):
    _, card = shapes_model
    seen: list[dict] = []
    ddp = run_fooling(_cfg(card.id, devices=2), progress=seen.append)
    diff = max_weight_diff(single.id, ddp.id)
    print(f"max weight difference, 2 gloo processes vs 1: {diff:.3g}")
    assert diff < 1e-5
    assert max_weight_diff(single.id, card.id) > 1e-3  # the run did change the weights
    assert [p.done for p in seen if "loss" in p.metrics] == [1, 2, 3, 4, 5, 6]
    assert all(p.extra["devices"] == 2 for p in seen)
    first = next(p for p in seen if "loss" in p.metrics)
    assert abs(first.metrics["loss"] - _first_loss(card.id)) < 1e-4  # losses are the global batch's


def _first_loss(card_id: str) -> float:
    losses: list[float] = []
    run_fooling(
        _cfg(card_id, steps=1),
        progress=lambda p: losses.append(p.metrics["loss"]) if "loss" in p.metrics else None,
    )
    return losses[0]


def test_a_killed_process_fails_the_run_and_a_retry_resumes(shapes_model, single, tmp_path):
    _, card = shapes_model
    cfg = _cfg(card.id, devices=2, checkpoint_every=2)

    def kill_rank_1(p):
        if p.done == 3 and "loss" in p.metrics:
            os.kill(p.extra["rank_pids"][1], signal.SIGKILL)

    with pytest.raises(DistributedRunFailed) as failed:
        run_fooling(cfg, progress=kill_rank_1, state_dir=tmp_path)
    message = str(failed.value)
    assert "process 1 of 2" in message and "SIGKILL" in message, message
    saved = int(re.search(r"resumes from the state saved at step (\d+)", message).group(1))
    seen: list[int] = []
    resumed = run_fooling(cfg, progress=lambda p: seen.append(p.done), state_dir=tmp_path)
    assert seen[0] == saved + 1
    assert max_weight_diff(single.id, resumed.id) < 1e-5
