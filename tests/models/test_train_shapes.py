"""The shapes CNN trains to >= 95% held-out accuracy, deterministically; the `train` job kind validates."""

import pytest
import torch

from backend.data.shapes import make_shapes
from backend.errors import InvalidConfig
from backend.jobs.kinds import get_kind
from backend.models.preprocessing import Preprocessing
from backend.models.train_shapes import accuracy, train_shapes_model


def test_default_training_reaches_the_accuracy_in_under_a_minute_or_two(isolated_lab):
    from backend.models.registry import Registry

    card = train_shapes_model({"seed": 0})
    model, card = Registry().load(card.id, device="cpu")
    assert card.architecture == "shapes_cnn" and card.kind == "trained"
    assert card.metrics["val_accuracy"] >= 0.95
    x, y, _ = make_shapes(300, 64, seed=4242)  # images neither training nor validation saw
    pre = Preprocessing.from_dict(card.preprocessing)
    assert accuracy(model, pre.normalize(x), y) >= 0.93


def test_deterministic_from_seed(isolated_lab):
    cfg = {"seed": 3, "n_train": 96, "n_val": 20, "epochs": 1, "batch_size": 32}
    seen = []
    a = train_shapes_model(cfg, progress=lambda p: seen.append((p.fraction, p.step, p.metrics)))
    b = train_shapes_model(cfg)
    c = train_shapes_model({**cfg, "seed": 4})
    assert a.sha256 == b.sha256 != c.sha256
    assert a.config["seed"] == 3 and a.config["n_train"] == 96
    assert seen[-1][0] == 1.0 and seen[-1][1] == 1 and 0 <= seen[-1][2]["val_accuracy"] <= 1


def test_train_kind_validation():
    kind = get_kind("train")
    assert kind.validate({})["seed"] == 0
    for bad, match in (({"epochs": 0}, "epochs"), ({"lr": "fast"}, "numbers"), ({"colour": 1}, "Unknown")):
        with pytest.raises(InvalidConfig, match=match):
            kind.validate(bad)


def test_shapes_cnn_explanation_layer_is_8x8(shapes_model):
    model, _ = shapes_model
    layer = dict(model.named_modules())[model.default_target_layer]
    out = {}
    handle = layer.register_forward_hook(lambda m, i, o: out.update(o=o))
    try:
        model(torch.zeros(1, 3, 64, 64))
    finally:
        handle.remove()
    assert out["o"].shape[-2:] == (8, 8)
