"""Decoy-enhanced saliency (Decoys) on the engine-fooled shapes CNN: is the enhanced map closer to the
un-manipulated parent's explanation than the fooled model's raw map? Counted over 16 images, with the
decoys' constraint checked on each; the numbers are printed and the test asserts what holds here."""

from __future__ import annotations

import pytest

from backend.data.shapes import make_shapes
from backend.decoys.job import decoy_settings, image_row, summarise
from backend.jobs.kinds import get_kind
from backend.models.preprocessing import Preprocessing
from tests.detect.conftest import METHOD

IMAGES = 16


@pytest.mark.slow
def test_decoy_enhanced_maps_of_the_fooled_model_against_the_baselines(fooled_shapes):
    base, card, fooled, fooled_card = fooled_shapes
    size = card.preprocessing["size"]
    pre = Preprocessing.from_dict(card.preprocessing)
    x01, _, _ = make_shapes(IMAGES, size, seed=31)
    summaries = {}
    for generator in ("optimize", "blur"):
        cfg = get_kind("decoys").validate(
            {"checkpoint": fooled_card.id, "baseline": card.id, "method": METHOD, "generator": generator}
        )
        settings = decoy_settings(cfg["decoys"])
        rows = [image_row(fooled, x01[i], pre, cfg, settings, base)[0] for i in range(IMAGES)]
        summaries[generator] = summary = summarise(rows)
        wins = sum(r["pcc_enhanced_to_baseline"] > r["pcc_raw_to_baseline"] for r in rows)
        assert summary["enhanced_closer_to_baseline"] == f"{wins} of {IMAGES} images"
        print(
            f"{generator}: enhanced closer to the baseline on {wins}/{IMAGES} images; mean PCC to the "
            f"baseline raw {summary['mean_pcc_raw_to_baseline']:.3f}, enhanced "
            f"{summary['mean_pcc_enhanced_to_baseline']:.3f}; iterations/decoy "
            f"{summary['mean_iterations_per_decoy']:.1f}; linf/eps {summary['mean_max_linf_over_eps']:.2f}"
        )
    opt = summaries["optimize"]
    assert opt["all_constraints_ok"]  # every optimised decoy kept ||F_l(x~) - F_l(x)||_inf <= eps
    assert opt["mean_iterations_per_decoy"] < 10  # the paper's stopping rule: a few steps per decoy
    # Measured here (shared 2-core CPU): the enhanced map was closer on 13 of 16 images, mean PCC to the
    # baseline's map -0.37 raw (the fooled map sits on the frame) vs +0.36 enhanced; blurred decoys
    # also 13 of 16 (+0.46). The floors leave room for the shapes CNN's training and fooling to vary.
    wins = int(opt["enhanced_closer_to_baseline"].split(" of ")[0])
    assert wins >= 10
    assert opt["mean_pcc_enhanced_to_baseline"] > opt["mean_pcc_raw_to_baseline"] + 0.3
