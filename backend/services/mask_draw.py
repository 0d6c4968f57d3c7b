"""A Location mask drawn by hand: the lasso and box selections a person makes on a plotly picture of
the image become a (size, size) mask.

Coordinates are plotly's data coordinates on that picture: x = column, y = row, pixel (r, c) spans
[c - 0.5, c + 0.5] x [r - 0.5, r + 0.5], so a pixel is inside a shape when its centre is (boundary
included). Several shapes add up (union).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from skimage.draw import polygon as fill_polygon

from backend.errors import InvalidConfig


def selection_polygons(selection: Mapping | None) -> list[np.ndarray]:
    """Every lasso path and box of a plotly selection as an (N, 2) array of (x, y) vertices.

    `selection` is Streamlit's `event.selection` (keys "lasso" and "box", each a list of
    `{"x": [...], "y": [...]}`); a box's x and y are its two corner values.
    """
    shapes: list[np.ndarray] = []
    for lasso in (selection or {}).get("lasso") or []:
        xs, ys = np.asarray(lasso.get("x", []), float), np.asarray(lasso.get("y", []), float)
        if len(xs) >= 3 and len(xs) == len(ys):
            shapes.append(np.stack([xs, ys], axis=1))
    for box in (selection or {}).get("box") or []:
        xs, ys = box.get("x", []), box.get("y", [])
        if len(xs) == 2 and len(ys) == 2:
            (x0, x1), (y0, y1) = sorted(map(float, xs)), sorted(map(float, ys))
            shapes.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    return shapes


def polygon_mask(size: int, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """1 at every pixel whose centre lies in any polygon, 0 elsewhere: float32 (size, size).

    Raises `InvalidConfig` when nothing was drawn or the shapes cover no pixel centre.
    """
    mask = np.zeros((size, size), dtype=np.float32)
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
            continue
        rows, cols = fill_polygon(pts[:, 1], pts[:, 0], shape=mask.shape)
        mask[rows, cols] = 1.0
    if not mask.any():
        raise InvalidConfig(
            "The drawn region covers no pixel: circle a larger part of the image with the lasso or box."
        )
    return mask


def selection_mask(size: int, selection: Mapping | None) -> np.ndarray | None:
    """The mask a selection draws, or None while nothing is drawn (`InvalidConfig` if it is empty)."""
    shapes = selection_polygons(selection)
    return polygon_mask(size, shapes) if shapes else None
