"""Attack penalties and test losses on hand-made heatmaps (no model needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.errors import InvalidConfig
from backend.fool.losses import FOOLING_ATTACKS, classification_loss
from backend.fool.masks import MASKS, corner_mask, frame_code_mask, frame_mask, resolve_mask
from backend.metrics.fsr import fsr


def test_frame_masks_follow_the_papers():
    m = frame_mask(8)
    assert m[2:6, 2:6].sum() == 0 and m.sum() == 64 - 16  # Heo2019 Remark 1: centre square [H/4, 3H/4)
    c = frame_code_mask(28)  # original code: frame of width 28 // 7 = 4
    assert c[:4].min() == 1 and c[4:24, 4:24].max() == 0 and c[4, 3] == 1
    assert (
        corner_mask(16, "bottom_right")[12:, 12:].min() == 1 and corner_mask(16, "bottom_right").sum() == 16
    )


def test_resolve_mask_accepts_arrays_and_refuses_wrong_size(tmp_path):
    arr = np.zeros((16, 16), dtype=np.float32)
    arr[:4, :4] = 1
    assert torch.equal(resolve_mask(arr.tolist(), 16), torch.from_numpy(arr))
    np.save(tmp_path / "m.npy", arr)
    assert torch.equal(resolve_mask(str(tmp_path / "m.npy"), 16), torch.from_numpy(arr))
    with pytest.raises(InvalidConfig, match="16x16"):
        resolve_mask(np.zeros((8, 8)), 16)
    with pytest.raises(InvalidConfig, match=r"\[0, 1\]"):
        resolve_mask(np.full((16, 16), 2.0), 16)
    with pytest.raises(InvalidConfig, match="Unknown mask"):
        resolve_mask("circle", 16)


def test_location_loss_is_zero_on_the_mask_and_eq3_elsewhere():
    attack = FOOLING_ATTACKS["location"]
    cfg = attack.setup({}, 8, 5)
    h = torch.stack([MASKS["frame"](8), torch.zeros(8, 8)])
    loss = attack.loss([h], {}, cfg)
    assert loss[0] == 0
    assert loss[1].item() == pytest.approx(48 / 64)  # (1/d) ||0 - m||^2


def test_topk_uses_the_original_top_pixels():
    attack = FOOLING_ATTACKS["topk"]
    cfg = attack.setup({"k": 10}, 10, 5)  # 10 -> 10%
    assert cfg["k"] == pytest.approx(0.1)
    h0 = torch.zeros(1, 10, 10)
    h0[0, 0, :] = 1.0  # original's top 10%: the first row
    ref = attack.reference([h0], cfg)
    assert attack.test_loss([h0], ref, cfg).item() == pytest.approx(1.0)
    moved = torch.zeros(1, 10, 10)
    moved[0, 9, :] = 1.0
    assert attack.test_loss([moved], ref, cfg).item() == pytest.approx(0.0)


def test_center_mass_test_loss_is_the_l1_shift_over_the_diagonal():
    attack = FOOLING_ATTACKS["center_mass"]
    cfg = attack.setup({}, 11, 5)
    h0 = torch.zeros(1, 11, 11)
    h0[0, 5, 5] = 1
    h = torch.zeros(1, 11, 11)
    h[0, 0, 0] = 1
    ref = attack.reference([h0], cfg)
    t = attack.test_loss([h], ref, cfg)
    assert t.item() == pytest.approx(10 / math.hypot(11, 11))
    assert attack.loss([h], ref, cfg).item() == pytest.approx(-t.item())


def test_center_mass_counts_a_collapsed_map_as_not_moved():
    attack = FOOLING_ATTACKS["center_mass"]
    cfg = attack.setup({}, 11, 5)
    h0 = torch.zeros(2, 11, 11)
    h0[:, 1, 1] = 1  # object near a corner: the middle of the image is far from it
    ref = attack.reference([h0], cfg)
    empty = torch.zeros(2, 11, 11, requires_grad=True)
    negative = -torch.ones(2, 11, 11)
    assert attack.test_loss([empty], ref, cfg).tolist() == [0.0, 0.0]
    assert attack.test_loss([negative], ref, cfg).tolist() == [0.0, 0.0]
    loss = attack.loss([empty], ref, cfg).sum()
    assert loss.item() == 0.0  # no reward for collapsing, unlike a real shift (< 0)


def test_com_point_distance_and_target_heatmap():
    attack = FOOLING_ATTACKS["com_point"]
    cfg = attack.setup({"point": [1.0, 1.0]}, 11, 5)
    h = torch.zeros(1, 11, 11)
    h[0, 10, 10] = 1
    assert attack.loss([h], {}, cfg).item() == pytest.approx(0.0)
    with pytest.raises(InvalidConfig, match="fractions"):
        attack.setup({"point": [2, 0]}, 11, 5)
    target = FOOLING_ATTACKS["target_heatmap"]
    tcfg = target.setup({"target": "cross"}, 16, 5)
    assert target.loss([tcfg["target_tensor"][None]], {}, tcfg).item() == pytest.approx(0.0)
    with pytest.raises(InvalidConfig, match="constant"):
        target.setup({"target": np.ones((4, 4))}, 16, 5)


def test_target_heatmap_is_judged_by_mse_or_by_the_thesis_correlation():
    """A cross at half height: the thesis's PCC counts it (PCC 1), our MSE bar 0.05 does not (0.059);
    a blank map with one hot pixel fails both."""
    target = FOOLING_ATTACKS["target_heatmap"]
    mse_cfg = target.setup({"target": "cross", "criterion": "mse"}, 64, 5)
    pcc_cfg = target.setup({"target": "cross"}, 64, 5)  # the thesis's measure is the default
    cross = mse_cfg["target_tensor"]
    blank = torch.zeros(64, 64)
    blank[0, 0] = 1.0
    maps = [torch.stack([0.5 * cross, blank])]
    t_mse = target.test_loss(maps, {}, mse_cfg)
    t_pcc = target.test_loss(maps, {}, pcc_cfg)
    assert t_mse[0].item() == pytest.approx(0.25 * cross.mean().item())  # 0.059
    assert t_pcc[0].item() == pytest.approx(0.0, abs=1e-6)
    assert pcc_cfg["criterion"] == "pcc"
    assert (target.criterion(mse_cfg), target.criterion(pcc_cfg)) == ("target_heatmap", "target_heatmap_pcc")
    assert fsr(t_mse, target.criterion(mse_cfg)) == 0.0
    assert fsr(t_pcc, target.criterion(pcc_cfg)) == 0.5
    with pytest.raises(InvalidConfig, match="criterion"):
        target.setup({"target": "cross", "criterion": "ssim"}, 64, 5)


def test_active_test_loss_ranges_from_unfooled_to_swapped():
    attack = FOOLING_ATTACKS["active"]
    cfg = attack.setup({"c1": 1, "c2": 3}, 8, 5)
    g = torch.Generator().manual_seed(0)
    h0_c1, h0_c2 = torch.rand(2, 8, 8, generator=g), torch.rand(2, 8, 8, generator=g)
    ref = attack.reference([h0_c1, h0_c2], cfg)
    unfooled = attack.test_loss([h0_c1, h0_c2], ref, cfg)
    swapped = attack.test_loss([h0_c2, h0_c1], ref, cfg)
    assert (unfooled <= 0).all() and (unfooled > -2).all()
    assert (swapped >= 0.5).all() and (swapped <= 2).all()
    assert attack.loss([h0_c2, h0_c1], ref, cfg).abs().max() == 0
    labels = torch.tensor([1, 2, 3, 0, -1])
    assert attack.weights(labels, cfg).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    two_objects = attack.setup({"c1": 1, "c2": 3, "images": "unlabelled"}, 8, 5)
    assert attack.weights(labels, two_objects).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert attack.weights(labels, attack.setup({"images": "all"}, 8, 5)).tolist() == [1.0] * 5
    # a card written before `images` existed still loads
    assert attack.setup({"pair_images_only": False}, 8, 5)["images"] == "all"
    with pytest.raises(InvalidConfig, match="different"):
        attack.setup({"c1": 2, "c2": 2}, 8, 5)
    with pytest.raises(InvalidConfig, match="'images'"):
        attack.setup({"images": "some"}, 8, 5)


def test_unknown_attack_setting_is_refused():
    with pytest.raises(InvalidConfig, match="no setting"):
        FOOLING_ATTACKS["topk"].setup({"kk": 3}, 8, 5)


def test_classification_terms():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    original = torch.tensor([[0.0, 3.0], [0.0, 3.0]])
    labels = torch.tensor([0, -1])  # the unlabelled image falls back to the original's prediction (1)
    ce = classification_loss("labels", logits, labels, original)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    assert ce.item() == pytest.approx(expected.item())
    ce_orig = classification_loss("original_predictions", logits, labels, original)
    assert ce_orig.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, torch.tensor([1, 1])).item()
    )
    assert classification_loss("keep_probs_mse", original, labels, original).item() == pytest.approx(0.0)
    assert classification_loss("keep_probs_kl", original, labels, original).item() == pytest.approx(
        0.0, abs=1e-7
    )
    assert classification_loss("keep_probs_kl", logits, labels, original).item() > 0.1
