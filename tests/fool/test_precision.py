"""Mixed precision on the CPU (bf16): every differentiable method's create_graph map under autocast is
compared with float32; the methods bf16 breaks are exactly the refused ones, with a clear message, and
an accepted one fools in bf16 (finite second-order gradients, weights move)."""

from __future__ import annotations

import pytest
import torch

from backend.data.shapes import make_shapes
from backend.errors import InvalidConfig
from backend.explain import METHODS
from backend.fool.config import FoolConfig
from backend.fool.precision import (
    BF16_REFUSED,
    REQUIRED_PCC,
    Precision,
    map_agreement,
    precision_for,
)
from backend.fool.trainer import run_fooling
from backend.models.registry import Registry

DIFFERENTIABLE = [n for n, m in METHODS.items() if m.differentiable and "image" in m.inputs]


@pytest.mark.parametrize("method", DIFFERENTIABLE)
def test_bf16_maps_agree_with_float32_exactly_where_accepted(shapes_model, method):
    model, _ = shapes_model
    x, y, _ = make_shapes(8, 64, 0)
    worst, finite = map_agreement(model, x, y, method, Precision("cpu", torch.bfloat16))
    assert finite
    print(f"{method}: bf16 vs float32 map PCC min {worst:.3f}")
    assert (worst >= REQUIRED_PCC) == (method not in BF16_REFUSED), worst


def test_bf16_is_refused_clearly_for_the_methods_it_breaks(shapes_model):
    _, card = shapes_model
    assert precision_for("cpu", True, "lrp_t").dtype == torch.bfloat16
    assert precision_for("cuda", True, "gradcam").dtype == torch.float16  # fp16 + GradScaler on a GPU
    assert not precision_for("cpu", True, "lrp_t").scaler().is_enabled()
    cfg = {"model": card.id, "dataset": {"kind": "shapes", "n": 32}, "mixed_precision": True}
    with pytest.raises(InvalidConfig, match="bf16 breaks 'gradcam'"):
        FoolConfig.from_dict({**cfg, "interpreter": "gradcam", "device": "cpu"}).validate(Registry())


def test_a_bf16_fooling_run_moves_the_weights(shapes_model):
    _, card = shapes_model
    cfg = {
        "model": card.id,
        "dataset": {"kind": "shapes", "n": 32, "seed": 2},
        "interpreter": "lrp_t",
        "mixed_precision": True,
        "device": "cpu",
        "steps": 2,
        "batch_size": 8,
        "lr": 1e-3,
        "val_size": 8,
    }
    losses: list[float] = []
    fooled = run_fooling(
        cfg, progress=lambda p: losses.append(p.metrics["loss"]) if "loss" in p.metrics else None
    )
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    reg = Registry()
    a, _ = reg.load(fooled.id, device="cpu")
    b, _ = reg.load(card.id, device="cpu")
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_the_form_shows_the_global_and_the_per_device_batch():
    from backend.services.form_fields import batch_text

    assert batch_text({"batch_size": 32, "devices": 4}) == "Batch 32 in all: 8 per device on 4 devices."
    assert batch_text({"batch_size": 8, "devices": 1}) == "Batch 8 on one device."
    assert "multiple of 3" in batch_text({"batch_size": 8, "devices": 3})
    cfg = FoolConfig.from_dict(
        {"model": "m", "dataset": {"kind": "shapes"}, "world_size": 2, "batch_size": 8}
    )
    assert cfg.devices == 2 and cfg.device_batch == 4
    with pytest.raises(InvalidConfig, match="does not split evenly over 3 devices"):
        FoolConfig.from_dict({"model": "m", "dataset": {"kind": "shapes"}, "devices": 3}).validate()
