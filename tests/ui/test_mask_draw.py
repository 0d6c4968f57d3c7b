"""Hand-drawn Location masks: plotly lasso/box selections rasterised at pixel centres."""

from __future__ import annotations

import numpy as np
import pytest

from backend.errors import InvalidConfig
from backend.services.mask_draw import polygon_mask, selection_mask, selection_polygons


def test_a_box_covers_exactly_the_pixels_whose_centres_it_contains():
    # x (columns) 1.6..4.4 holds centres 2, 3, 4; y (rows) -0.5..1.2 holds centres 0, 1
    mask = selection_mask(8, {"box": [{"x": [4.4, 1.6], "y": [1.2, -0.5]}], "lasso": []})
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[0:2, 2:5] = 1
    assert mask.dtype == np.float32 and np.array_equal(mask, expected)


def test_a_lasso_triangle_fills_its_inside_only():
    tri = {"lasso": [{"x": [0, 15, 0], "y": [0, 15, 15]}]}  # the lower-left half, diagonal included
    mask = selection_mask(16, tri)
    rows, cols = np.mgrid[:16, :16]
    assert np.array_equal(mask.astype(bool), cols <= rows)


def test_shapes_add_up_and_an_overlap_counts_once():
    sel = {
        "box": [{"x": [0, 3], "y": [0, 3]}, {"x": [2, 5], "y": [2, 5]}],
        "lasso": [{"x": [10, 12, 12, 10], "y": [10, 10, 12, 12]}],
    }
    mask = selection_mask(16, sel)
    assert mask.max() == 1.0 and mask.sum() == 16 + 16 - 4 + 9


def test_a_lasso_circle_area_matches_the_disc():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circle = {"lasso": [{"x": list(32 + 20 * np.cos(t)), "y": list(32 + 20 * np.sin(t))}]}
    assert selection_mask(64, circle).sum() == pytest.approx(np.pi * 20**2, rel=0.03)


def test_shapes_outside_the_image_are_clipped():
    mask = selection_mask(8, {"box": [{"x": [5.5, 40], "y": [-10, 40]}]})
    assert mask.sum() == 2 * 8 and mask[:, 6:].all()


def test_nothing_drawn_is_none_and_a_sliver_is_refused():
    assert selection_mask(8, None) is None
    assert selection_mask(8, {"lasso": [], "box": [], "points": []}) is None
    assert selection_polygons({"lasso": [{"x": [1, 2], "y": [1, 2]}]}) == []  # two points: no area
    with pytest.raises(InvalidConfig, match="covers no pixel"):
        polygon_mask(8, [np.array([[1.1, 1.1], [1.4, 1.1], [1.4, 1.4]])])


def test_drawing_figure_spans_the_picture_with_selectable_points():
    from backend.services.figures import drawing_figure

    fig = drawing_figure(np.zeros((32, 32, 3), dtype=np.uint8), grid=8)
    photo, lattice = fig.data
    assert photo.source.startswith("data:image/png") and fig.layout.dragmode == "lasso"
    assert len(lattice.x) == 64 and (min(lattice.x), max(lattice.x)) == (0, 31)
    assert (min(lattice.y), max(lattice.y)) == (0, 31) and lattice.marker.opacity == 0
    assert tuple(fig.layout.yaxis.range) == (31.5, -0.5)  # rows grow downwards, as in the mask
