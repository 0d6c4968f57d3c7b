"""The trainer's means to fool harder models without giving up accuracy: a larger lambda for the first
steps (`lam_start`), and keep_best limited to weights within an accuracy loss (`max_accuracy_drop`,
for Active the two swapped classes' own accuracy)."""

from __future__ import annotations

import pytest
import torch

from backend.errors import InvalidConfig
from backend.fool.config import FoolConfig
from backend.fool.losses import FOOLING_ATTACKS
from backend.fool.trainer import Best, accuracy_drop, prepare, train_step

DATA = {"kind": "shapes", "n": 64, "seed": 1}


def test_lambda_is_lam_start_for_the_first_steps_then_lam():
    cfg = FoolConfig.from_dict(
        {"model": "m", "dataset": DATA, "lam": 15, "lam_start": 60, "lam_start_steps": 2}
    )
    assert [cfg.lam_at(s) for s in range(4)] == [60, 60, 15, 15]
    assert (
        FoolConfig.from_dict({"model": "m", "dataset": DATA, "lam": 3, "lam_start_steps": 5}).lam_at(0) == 3
    )
    with pytest.raises(InvalidConfig, match="lambda at the start must be >= 0"):
        FoolConfig.from_dict({"model": "m", "dataset": DATA, "lam_start": -1}).validate()


def test_the_trainer_weighs_the_fooling_term_with_lam_start_then_lam(shapes_model):
    _, card = shapes_model
    cfg = FoolConfig.from_dict(
        {
            "model": card.id,
            "dataset": DATA,
            "attack": "location",
            "lam": 2.0,
            "lam_start": 50.0,
            "lam_start_steps": 1,
            "batch_size": 4,
            "steps": 2,
            "lr": 1e-9,  # the weights barely move: the two steps' terms are comparable
        }
    )
    run = prepare(cfg)
    x, y = run.data.val_x[:4], run.data.val_y[:4]
    for lam in (50.0, 2.0):
        terms = train_step(run, x, y)
        assert terms["loss"] == pytest.approx(terms["loss_c"] + lam * terms["loss_f"], rel=1e-5)


def test_accuracy_drop_guards_the_attacks_classes_or_top1():
    labels = torch.tensor([0, 0, 2, 2, 1, 1, -1])
    original = torch.tensor([0, 0, 2, 2, 1, 1, 0])
    fooled = torch.tensor([0, 0, 2, 0, 0, 0, 2])  # half the triangles (2) and every square (1) lost
    assert accuracy_drop(fooled, original, labels, [0, 2]) == pytest.approx(0.5)
    assert accuracy_drop(fooled, original, labels, []) == pytest.approx(0.5)  # top-1: 6/6 -> 3/6
    assert accuracy_drop(fooled, original, labels, [3]) is None  # no image of the class
    assert accuracy_drop(fooled, original, torch.full((7,), -1), []) is None
    active = FOOLING_ATTACKS["active"]
    assert active.guarded_classes(active.setup({"c1": 0, "c2": 2}, 64, 5)) == [0, 2]


def test_keep_best_with_an_accuracy_limit_prefers_weights_within_it():
    best = Best(100, {"fsr": 0.98, "agreement": 0.9, "accuracy_drop": 0.10})
    within = {"fsr": 0.85, "agreement": 0.9, "accuracy_drop": 0.02}
    assert not best.beaten_by(within)  # without a limit: the higher FSR
    assert best.beaten_by(within, 0.03)
    assert not Best(100, within).beaten_by({"fsr": 0.99, "agreement": 1.0, "accuracy_drop": 0.05}, 0.03)


def test_keep_best_outside_the_limit_prefers_the_smallest_accuracy_loss():
    """No validation within the limit: the one that lost least accuracy wins, not the highest FSR."""
    swapped_but_broken = Best(300, {"fsr": 0.95, "agreement": 0.5, "accuracy_drop": 0.22})
    recovered = {"fsr": 0.84, "agreement": 0.8, "accuracy_drop": 0.035}
    assert swapped_but_broken.beaten_by(recovered, 0.03)
    assert not Best(1200, recovered).beaten_by(swapped_but_broken.val, 0.03)
    within = {"fsr": 0.10, "agreement": 0.9, "accuracy_drop": 0.01}
    assert Best(1200, recovered).beaten_by(within, 0.03)  # anything within the limit still comes first
    assert not swapped_but_broken.beaten_by(recovered)  # without a limit: the higher FSR, as before
