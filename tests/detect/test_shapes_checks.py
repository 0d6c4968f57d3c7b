"""On the trained shapes CNN: the randomisation check's similarity falls as layers are destroyed."""

from __future__ import annotations

import pytest
import torch

from backend.data.shapes import make_shapes
from backend.detect.randomization import cascading_randomization, parametric_layers
from backend.models.preprocessing import Preprocessing


@pytest.mark.slow
def test_cascading_randomization_destroys_the_baselines_maps(fooled_shapes):
    model, card, _, _ = fooled_shapes
    pre = Preprocessing.from_dict(card.preprocessing)
    x, _, _ = make_shapes(6, card.preprocessing["size"], seed=7)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = cascading_randomization(model, pre.normalize(x), "gradient", seed=0)
    steps = res["steps"]
    assert [s["layer"] for s in steps[1:]] == parametric_layers(model)
    assert steps[0]["ssim"] == 1.0
    ssim = [s["ssim"] for s in steps]
    spearman = [s["spearman"] for s in steps]
    # fully randomised: far from the original maps, and clearly lower than after the first step
    assert ssim[-1] < 0.5 and spearman[-1] < 0.5
    assert ssim[-1] < ssim[1] - 0.1
    # the model itself is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
