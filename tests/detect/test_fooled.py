"""The session's shapes CNN fooled by the fooling engine (tests/detect/conftest.py `fooled_shapes`) against
its un-manipulated parent: the fooling took hold, the noise-input test separates the two the way the
thesis reports (a fooled model's maps of noise images are near-identical), and the report card says so."""

from __future__ import annotations

import pytest
import torch

from backend.data.shapes import make_shapes
from backend.detect.heatmaps import scaled_heatmaps
from backend.detect.noise_inputs import noise_input_test
from backend.detect.report import report_card
from backend.fool.masks import frame_mask
from backend.metrics.similarity import pearson
from backend.models.preprocessing import Preprocessing
from tests.detect.conftest import METHOD


@pytest.mark.slow
def test_the_engine_fooled_the_model_and_kept_its_predictions(fooled_shapes):
    base, card, fooled, fooled_card = fooled_shapes
    assert fooled_card.parent == card.id and fooled_card.kind == "fooled"
    size = card.preprocessing["size"]
    x, y, _ = make_shapes(48, size, seed=21)
    x = Preprocessing.from_dict(card.preprocessing).normalize(x)
    frame = frame_mask(size)[None].expand(len(x), -1, -1)  # the Location attack's target (Heo2019 Remark 1)
    measured = {}
    for name, model in (("baseline", base), ("fooled", fooled)):
        maps = scaled_heatmaps(model, x, None, METHOD)
        measured[f"{name} pcc to frame"] = float(pearson(maps, frame).mean())
        with torch.no_grad():
            measured[f"{name} accuracy"] = float((model(x).argmax(1) == y).float().mean())
    print(measured)
    # its maps moved onto the frame, its predictions stayed
    assert measured["fooled pcc to frame"] > measured["baseline pcc to frame"] + 0.2
    assert measured["fooled accuracy"] >= measured["baseline accuracy"] - 0.1


@pytest.mark.slow
def test_noise_inputs_flag_the_fooled_model(fooled_shapes):
    base, card, fooled, _ = fooled_shapes
    shape = (3, card.preprocessing["size"], card.preprocessing["size"])
    b = noise_input_test(base, shape, n=12, seed=0, method=METHOD)
    s = noise_input_test(fooled, shape, n=12, seed=0, method=METHOD)
    print(
        f"noise-input {METHOD} PCC baseline {b['pcc_mean']:.3f} vs fooled {s['pcc_mean']:.3f}; "
        f"SSIM {b['ssim_mean']:.3f} vs {s['ssim_mean']:.3f}"
    )
    # thesis Table 4.2: PCC 0.975 (fooled) vs 0.233 (baseline); the direction and a clear gap must hold
    assert s["pcc_mean"] > b["pcc_mean"] + 0.2
    assert s["ssim_mean"] > b["ssim_mean"]
    card_ = report_card({"noise_inputs": b}, {"noise_inputs": s})
    assert card_["flagged_by"] == ["noise_inputs"]  # crosses b + (1 - b) / 2
