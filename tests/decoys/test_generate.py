"""Decoy generation: every decoy keeps its constraint, changes only its patch, and stays an image."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from backend.decoys.features import layer_output, leaf_modules, resolve_decoy_layer
from backend.decoys.generate import DecoySettings, blur_decoys, feature_distance, optimise_decoys
from backend.decoys.masks import patch_masks
from backend.errors import InvalidConfig, InvalidImage


@pytest.mark.parametrize("size,patch,stride", [(24, 8, 8), (24, 5, 4), (10, 3, 1)])
def test_patch_masks_cover_every_pixel_with_square_patches(size, patch, stride):
    masks = patch_masks(size, size, patch, stride)
    assert masks.any(0).all()
    assert (masks.flatten(1).sum(1) == patch * patch).all()
    starts = len(range(0, size - patch + 1, stride)) + (1 if (size - patch) % stride else 0)
    assert masks.shape[0] == starts * starts


def test_patch_masks_refuse_impossible_sizes():
    with pytest.raises(InvalidConfig):
        patch_masks(8, 8, 9, 1)
    with pytest.raises(InvalidConfig):
        patch_masks(8, 8, 3, 0)


def test_layer_output_stops_at_the_layer_and_removes_its_hook(tiny_net):
    class Boom(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("layers above the decoy layer must not run")

    net = torch.nn.Sequential(*list(tiny_net.children())[:2], Boom())
    with layer_output(net, "1") as feats:
        f = feats(torch.rand(2, 3, 8, 8))
    assert f.shape == (2, 8, 8, 8) and (f >= 0).all()
    assert all(not m._forward_hooks for m in net.modules())
    assert resolve_decoy_layer(tiny_net, 3)[0] == leaf_modules(tiny_net)[3][0]
    with pytest.raises(InvalidConfig):
        resolve_decoy_layer(tiny_net, "nope")


def test_every_optimised_decoy_keeps_its_constraint_and_its_mask(tiny_net, normalize, image):
    s = DecoySettings(layer="3", patch=8, stride=8, steps=20, max_doublings=1)
    d = optimise_decoys(tiny_net, image, normalize, s)
    n = patch_masks(24, 24, 8, 8).shape[0]
    assert d.decoys.shape == (2 * n, 3, 24, 24)
    assert sorted(d.signs.unique().tolist()) == [-1, 1]
    # the constraint, recomputed from scratch
    linf = feature_distance(tiny_net, image, d.decoys, "3", normalize)
    assert (linf <= d.epsilon * (1 + 1e-5)).all()
    torch.testing.assert_close(linf, d.linf, rtol=1e-4, atol=1e-6)
    outside = (d.decoys - image[None]).abs() * (~d.masks[:, None])
    assert float(outside.max()) == 0.0
    assert float(d.decoys.min()) >= 0.0 and float(d.decoys.max()) <= 1.0
    # the optimisation actually moved the pixels, in the direction of each decoy's sign
    assert d.trivial == 0
    gain = ((d.decoys - image[None]) * d.signs.view(-1, 1, 1, 1)).clamp_min(0).flatten(1).sum(1)
    torch.testing.assert_close(gain, d.deviation, rtol=1e-4, atol=1e-5)
    assert float(d.deviation.min()) > 0.5


def test_a_larger_tolerance_allows_larger_decoys(tiny_net, normalize, image):
    small = optimise_decoys(
        tiny_net, image, normalize, DecoySettings(patch=12, stride=12, relative_epsilon=0.02)
    )
    large = optimise_decoys(
        tiny_net, image, normalize, DecoySettings(patch=12, stride=12, relative_epsilon=0.3)
    )
    assert float(large.deviation.mean()) > float(small.deviation.mean())
    assert (small.linf <= small.epsilon * (1 + 1e-5)).all() and (
        large.linf <= large.epsilon * (1 + 1e-5)
    ).all()


def test_infeasible_tolerance_doubles_c_and_falls_back_to_the_input(tiny_net, normalize, image):
    s = DecoySettings(patch=12, stride=12, epsilon=1e-9, c=1.0, max_doublings=2, steps=5)
    d = optimise_decoys(tiny_net, image, normalize, s)
    # no change keeps F_l within 1e-9, so every decoy is the input itself: trivially valid
    assert d.trivial == d.decoys.shape[0]
    assert torch.equal(d.decoys, image[None].expand_as(d.decoys))
    assert float(d.linf.max()) == 0.0


def test_blur_decoys_change_only_the_patch_and_report_their_violation(tiny_net, normalize, image):
    d = blur_decoys(tiny_net, image, normalize, DecoySettings(patch=8, stride=8), sigma=1.5)
    outside = (d.decoys - image[None]).abs() * (~d.masks[:, None])
    assert float(outside.max()) == 0.0
    inside = (d.decoys - image[None]).abs().flatten(1).sum(1)
    assert (inside > 0).all()
    torch.testing.assert_close(d.linf, feature_distance(tiny_net, image, d.decoys, None, normalize))


def test_bad_inputs_get_typed_errors(tiny_net, normalize, image):
    with pytest.raises(InvalidImage):
        optimise_decoys(tiny_net, image * 3, normalize)
    with pytest.raises(InvalidImage):
        optimise_decoys(tiny_net, image[None], normalize)
    with pytest.raises(InvalidConfig):
        optimise_decoys(tiny_net, image, normalize, DecoySettings(signs=(2,)))


def test_the_papers_stopping_rule_ends_sooner_and_never_beats_the_full_budget(tiny_net, normalize, image):
    budget = DecoySettings(patch=12, stride=12, steps=30, max_doublings=0, paper_stop=False)
    full = optimise_decoys(tiny_net, image, normalize, budget)
    paper = optimise_decoys(tiny_net, image, normalize, replace(budget, paper_stop=True))
    assert DecoySettings().paper_stop  # the paper's rule is the default
    assert (paper.linf <= paper.epsilon * (1 + 1e-5)).all()
    # every decoy ran every step, plus the evaluation of the last iterate
    assert full.iterations == full.decoys.shape[0] * 31
    # the paper's rule stops each decoy after a few steps, far below the budget
    assert paper.iterations <= full.iterations / 3
    # same trajectory up to the paper's stop, so the budgeted run keeps a decoy at least as large
    assert (full.deviation >= paper.deviation - 1e-4).all()


def test_batching_masks_changes_nothing_but_the_cost(tiny_net, normalize, image):
    one_batch = optimise_decoys(tiny_net, image, normalize, DecoySettings(patch=8, stride=8))
    chunked = optimise_decoys(tiny_net, image, normalize, DecoySettings(patch=8, stride=8, batch_size=3))
    torch.testing.assert_close(one_batch.decoys, chunked.decoys, rtol=0, atol=1e-5)
    assert one_batch.iterations == chunked.iterations
