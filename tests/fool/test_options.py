"""Options do what they say: BatchNorm frozen or trained, frozen classifier, only the first N layers."""

from __future__ import annotations

import pytest
import torch

from backend.fool.trainer import run_fooling, weight_layers
from backend.models.registry import Registry


def _fool(card_id: str, **options) -> dict[str, torch.Tensor]:
    cfg = {
        "model": card_id,
        "dataset": {"kind": "shapes", "n": 40, "seed": 8},
        "attack": "location",
        "interpreter": "gradcam",
        "steps": 3,
        "batch_size": 8,
        "lr": 1e-2,
        "lam": 5.0,
        "val_size": 8,
        **options,
    }
    fooled = run_fooling(cfg)
    return {k: v.clone() for k, v in Registry().load(fooled.id, device="cpu")[0].state_dict().items()}


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def fooled_variants(shapes_model):
    model, card = shapes_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runs = {
        "bn_frozen": _fool(card.id),
        "bn_trained": _fool(card.id, freeze_batchnorm=False),
        "first_2": _fool(card.id, train_first_n=2),
        "classifier_frozen": _fool(card.id, freeze_classifier=True),
    }
    return before, {name: _changed(before, after) for name, after in runs.items()}


def test_batchnorm_statistics_move_only_when_not_frozen(fooled_variants):
    _, changed = fooled_variants
    stats = {f"features.{i}.{s}" for i in (1, 4, 7, 10, 13, 16) for s in ("running_mean", "running_var")}
    assert not stats & changed["bn_frozen"]
    assert stats <= changed["bn_trained"]  # explain() ran the fooled model in train mode


def test_first_n_counts_layers_with_weights_and_keeps_their_batchnorm(shapes_model, fooled_variants):
    model, _ = shapes_model
    groups = weight_layers(model)
    assert len(groups) == 8  # six convs (each with its BatchNorm), the head's 1x1 conv, the classifier
    assert [type(m).__name__ for m in groups[0]] == ["Conv2d", "BatchNorm2d"]
    _, changed = fooled_variants
    trained = {k for k in changed["first_2"] if not k.endswith(("running_mean", "running_var"))}
    assert {k.rsplit(".", 1)[0] for k in trained} == {"features.0", "features.1", "features.3", "features.4"}


def test_frozen_classifier_stays_while_the_rest_trains(fooled_variants):
    _, changed = fooled_variants
    assert not {"classifier.weight", "classifier.bias"} & changed["classifier_frozen"]
    assert {"features.0.weight", "head.0.weight"} <= changed["classifier_frozen"]
    assert {"classifier.weight", "features.0.weight"} <= changed["bn_frozen"]
