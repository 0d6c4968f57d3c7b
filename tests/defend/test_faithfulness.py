"""ROAD and ROAR on the base shapes CNN, the imputation they rest on, and the alignment metric."""

from __future__ import annotations

import pytest
import torch

from backend.metrics.alignment import alignment
from backend.metrics.faithfulness import noisy_linear_impute, random_scores, removal_mask, road

ROAD_IMAGES = 128  # at 20% removed the Gradient ranking costs 5-10 points: 64 images are too few


def test_removal_mask_takes_the_share_asked_for_from_the_right_end():
    scores = torch.arange(16.0).view(1, 4, 4)
    most = removal_mask(scores, 0.25)
    least = removal_mask(scores, 0.25, most_relevant_first=False)
    assert most.sum() == 4 and most.flatten()[-4:].all()
    assert least.sum() == 4 and least.flatten()[:4].all()


def test_linear_imputation_keeps_known_pixels_and_fills_with_the_neighbours_mean():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12)
    removed = removal_mask(random_scores((2, 12, 12), 1), 0.5)
    filled = noisy_linear_impute(x, removed, noise=0.0)
    keep = ~removed[:, None].expand_as(x)
    assert torch.equal(filled[keep], x[keep])
    # an interior removed pixel is the 1/6 (edge) 1/12 (corner) weighted mean of its neighbours
    k = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])
    b, i, j = next((b, i, j) for b, i, j in removed.nonzero().tolist() if 0 < i < 11 and 0 < j < 11)
    mean = (filled[b, :, i - 1 : i + 2, j - 1 : j + 2] * k).sum((1, 2))
    assert torch.allclose(filled[b, :, i, j], mean, atol=1e-5)
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(
        noisy_linear_impute(flat, removal_mask(random_scores((1, 8, 8), 2), 0.8), 0.0), flat
    )


def test_alignment_is_the_image_norm_when_the_gradient_is_the_image():
    x = torch.rand(3, 3, 8, 8)
    assert torch.allclose(alignment(x, 5 * x), x.flatten(1).norm(dim=1), rtol=1e-5)
    g = torch.randn(3, 3, 8, 8)
    orth = (
        g
        - (g.flatten(1) * x.flatten(1)).sum(1).view(-1, 1, 1, 1)
        / x.flatten(1).norm(dim=1).pow(2).view(-1, 1, 1, 1)
        * x
    )
    assert alignment(x, orth).abs().max() < 1e-4


def test_road_most_relevant_first_by_gradient_and_lrp_hurts_more_than_random(shapes_model):
    """Measured on 128 held-out images: MoRF random 98/98/97/89, Gradient 88/76/49/30, LRP 29/21/18/20."""
    from backend.data.shapes import make_shapes
    from backend.explain import explain
    from backend.models.preprocessing import Preprocessing

    model, card = shapes_model
    pre = Preprocessing.from_dict(card.preprocessing)
    x01, y, _ = make_shapes(ROAD_IMAGES, 64, 99)
    x = pre.normalize(x01)
    scores = {"random": random_scores((ROAD_IMAGES, 64, 64), 0)}
    for method in ("gradient", "lrp"):
        scores[method] = explain(model, x, y, method).heatmap.detach().abs()
    result = road(model, x01, y, pre.normalize, scores, fractions=(0.2, 0.4), orders=("morf",))
    morf = result["morf"]
    assert result["clean"] > 0.9
    assert morf["gradient"][0] < morf["random"][0] - 0.03, morf
    assert morf["gradient"][1] < morf["random"][1] - 0.1, morf
    assert max(morf["lrp"]) < min(morf["random"]) - 0.3, morf


@pytest.mark.slow
def test_roar_random_removal_gives_a_monotone_curve(shapes_model):
    """Random pixels removed from training and test images alike, a fresh CNN retrained each time."""
    from backend.data.shapes import make_shapes
    from backend.metrics.faithfulness import roar
    from backend.models import zoo
    from backend.models.preprocessing import Preprocessing

    _, card = shapes_model
    pre = Preprocessing.from_dict(card.preprocessing)
    x_tr, y_tr, _ = make_shapes(768, 64, 5)
    x_te, y_te, _ = make_shapes(128, 64, 6)

    def retrain(xn, yn):
        torch.manual_seed(0)
        net = zoo.build("shapes_cnn", 5, width=8)
        opt = torch.optim.Adam(net.parameters(), lr=4e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            net.train()
            order = torch.randperm(len(xn), generator=g)
            for i in range(0, len(xn), 32):
                idx = order[i : i + 32]
                loss = torch.nn.functional.cross_entropy(net(xn[idx]), yn[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return net.eval()

    result = roar(
        retrain,
        (x_tr, y_tr),
        (x_te, y_te),
        pre.normalize,
        {"random": random_scores((768, 64, 64), 1)},
        {"random": random_scores((128, 64, 64), 2)},
        fractions=(0.2, 0.4, 0.6, 0.8),
    )
    curve = [result["clean"], *result["morf"]["random"]]
    assert all(b <= a + 0.03 for a, b in zip(curve, curve[1:])), curve
    assert curve[-1] < curve[0], curve
