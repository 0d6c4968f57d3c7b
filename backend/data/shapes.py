"""Synthetic "shapes": one object per image on a textured, cluttered background, with its exact mask.

`make_shape_pairs` draws two objects of two given classes side by side (Heo et al.'s Active fooling
explains both classes on images that show both).

Everything is drawn with tensor ops on a coordinate grid (no per-image Python loop), so thousands of
64 px images take about a second. All randomness comes from one `torch.Generator` seeded by `seed`:
the same (n, size, seed) always gives the same bytes. Objects sit anywhere in the frame (not only the
centre), so "does the explanation point at the object" can be measured against the mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from backend.errors import InvalidDataset

SHAPE_CLASSES: list[str] = ["circle", "square", "triangle", "cross", "ring"]
MAX_IMAGES = 200_000
_CHUNK = 512  # images rendered at once; parameters are drawn up front, so chunking never changes output
_STROKES = 3  # distractor strokes per image
_TRIANGLE_NORMALS = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]


def _shape_masks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Membership of every class at local coordinates (u, v) (unit radius): (K, ...) bool."""
    r2 = u * u + v * v
    au, av = u.abs(), v.abs()
    triangle = torch.ones_like(u, dtype=torch.bool)
    for nx, ny in _TRIANGLE_NORMALS:
        triangle &= nx * u + ny * v <= 0.5
    return torch.stack(
        [
            r2 <= 0.85,  # circle
            torch.maximum(au, av) <= 0.72,  # square
            triangle,
            ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95)),  # cross
            (r2 <= 1.0) & (r2 >= 0.36),  # ring
        ]
    )


def _params(n: int, size: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    def uni(*shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    k = len(SHAPE_CLASSES)
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    radius = uni(n, lo=0.17, hi=0.28) * size
    margin = radius + 1
    bg = uni(n, 3, lo=0.2, hi=0.8)
    sign = torch.where(torch.rand(n, 3, generator=g) < 0.5, -1.0, 1.0)
    obj = (bg + sign * uni(n, 3, lo=0.35, hi=0.55)).clamp(0, 1)
    # where clamping ate the contrast, flip to the other side
    weak = (obj - bg).abs() < 0.3
    obj = torch.where(weak, (bg - sign * 0.45).clamp(0, 1), obj)
    return {
        "labels": labels,
        "radius": radius,
        "cx": margin + uni(n) * (size - 2 * margin),
        "cy": margin + uni(n) * (size - 2 * margin),
        "angle": uni(n, hi=2 * math.pi),
        "bg": bg,
        "obj": obj,
        "coarse": uni(n, 3, 6, 6, lo=-1, hi=1),
        "fine": uni(n, 3, 16, 16, lo=-1, hi=1),
        "stripe": torch.stack([uni(n, hi=2 * math.pi), uni(n, lo=2, hi=7), uni(n, hi=2 * math.pi)], 1),
        "stroke_pts": uni(n, _STROKES, 4) * size,
        "stroke_rgb": uni(n, _STROKES, 3),
        "stroke_w": uni(n, _STROKES, lo=0.5, hi=1.0) * size / 64,
    }


def _render(p: dict[str, torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = p["labels"].shape[0]
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = coords.view(1, size, 1), coords.view(1, 1, size)
    # background: base colour + coarse and fine noise (separable interpolation) + faint stripes
    noise = 0.12 * _upsample(p["coarse"], size) + 0.05 * _upsample(p["fine"], size)
    theta, freq, phase = (p["stripe"][:, i].view(n, 1, 1) for i in range(3))
    waves = torch.sin((xx * torch.cos(theta) + yy * torch.sin(theta)) * freq * 2 * math.pi / size + phase)
    img = p["bg"].view(n, 3, 1, 1) + noise + 0.06 * waves.unsqueeze(1)
    # distractor strokes: thin segments of random colour; a later stroke covers an earlier one
    x0, y0, x1, y1 = (p["stroke_pts"][..., i].view(n, _STROKES, 1, 1) for i in range(4))
    dx, dy = x1 - x0, y1 - y0
    length = torch.sqrt(dx * dx + dy * dy) + 1e-6
    # both the position along the segment and the distance across it are linear in x and y: separable
    along = (xx * dx / length**2 - x0 * dx / length**2) + (yy * dy / length**2 - y0 * dy / length**2)
    across = (xx * dy / length - x0 * dy / length) - (yy * dx / length - y0 * dx / length)
    on = (across.abs() <= p["stroke_w"].view(n, _STROKES, 1, 1)) & (along >= 0) & (along <= 1)
    top = (on * torch.arange(1, _STROKES + 1).view(1, _STROKES, 1, 1)).amax(1)  # 0 = no stroke
    palette = torch.cat([torch.zeros(n, 1, 3), p["stroke_rgb"]], 1)  # (n, K+1, 3)
    stroke_rgb = torch.gather(palette, 1, top.view(n, -1, 1).expand(-1, -1, 3)).view(n, size, size, 3)
    img = torch.where((top > 0).unsqueeze(1), stroke_rgb.permute(0, 3, 1, 2), img)
    return _paint(img, p, size)


def _paint(img: torch.Tensor, p: dict[str, torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the object described by `p` (labels, radius, cx, cy, angle, obj) over `img`."""
    n = img.shape[0]
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = coords.view(1, size, 1), coords.view(1, 1, size)
    # local rotated coordinates of unit radius
    cos, sin = torch.cos(p["angle"]).view(n, 1, 1), torch.sin(p["angle"]).view(n, 1, 1)
    r = p["radius"].view(n, 1, 1)
    ox, oy = (xx - p["cx"].view(n, 1, 1)) / r, (yy - p["cy"].view(n, 1, 1)) / r
    u, v = cos * ox + sin * oy, -sin * ox + cos * oy
    masks = _shape_masks(u, v)[p["labels"], torch.arange(n)]
    shade = 1 + 0.08 * (u * 0.5 - v * 0.5).clamp(-1, 1)  # a little shading so the fill is not flat
    fill = (p["obj"].view(n, 3, 1, 1) * shade.unsqueeze(1)).clamp(0, 1)
    img = torch.where(masks.unsqueeze(1), fill, img)
    return img.clamp(0, 1), masks


def _upsample(grid: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling of (n, c, k, k) to (n, c, size, size) as two small matrix products."""
    k = grid.shape[-1]
    weights = F.interpolate(torch.eye(k).unsqueeze(0), size=size, mode="linear", align_corners=False)[0]
    return torch.einsum("ki,nckl,lj->ncij", weights, grid, weights)


def make_shapes(n: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images (n,3,size,size) float32 in [0,1], labels (n,) int64, masks (n,size,size) bool)."""
    if not 1 <= int(n) <= MAX_IMAGES:
        raise InvalidDataset(f"Number of shapes images must be between 1 and {MAX_IMAGES}, got {n}")
    if not 16 <= int(size) <= 1024:
        raise InvalidDataset(f"Shapes image size must be between 16 and 1024 px, got {size}")
    n, size = int(n), int(size)
    g = torch.Generator().manual_seed(int(seed))
    params = _params(n, size, g)
    images = torch.empty(n, 3, size, size)
    masks = torch.empty(n, size, size, dtype=torch.bool)
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        images[sl], masks[sl] = _render({k: v[sl] for k, v in params.items()}, size)
    return images, params["labels"].clone(), masks


def _pair_params(n: int, size: int, c1: int, c2: int, g: torch.Generator) -> tuple[dict, dict]:
    """A background with a c1 object in one half and a c2 object in the other (sides at random)."""
    base = _params(n, size, g)
    second = _params(n, size, g)
    half = size / 2
    left_first = torch.rand(n, generator=g) < 0.5
    for p, label, on_left in ((base, c1, left_first), (second, c2, ~left_first)):
        p["labels"] = torch.full((n,), label, dtype=torch.long)
        p["radius"] = (0.13 + 0.07 * torch.rand(n, generator=g)) * size  # two must fit side by side
        margin = p["radius"] + 1
        p["cx"] = margin + torch.rand(n, generator=g) * (half - 2 * margin) + torch.where(on_left, 0.0, half)
        p["cy"] = margin + torch.rand(n, generator=g) * (size - 2 * margin)
    # the second object keeps its own colour but contrasts with the first image's background
    weak = (second["obj"] - base["bg"]).abs() < 0.3
    flipped = torch.where(base["bg"] < 0.5, base["bg"] + 0.45, base["bg"] - 0.45)
    second["obj"] = torch.where(weak, flipped, second["obj"])
    return base, second


def make_shape_pairs(
    n: int, size: int = 64, seed: int = 0, classes: tuple[int, int] = (0, 1)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two-object images for Heo et al.'s Active fooling (images that show both c1 and c2).

    Returns (images (n,3,size,size), masks (n,2,size,size) bool: the c1 object's, then the c2 object's).
    Deterministic from `seed`, like `make_shapes`.
    """
    if not 1 <= int(n) <= MAX_IMAGES:
        raise InvalidDataset(f"Number of shapes images must be between 1 and {MAX_IMAGES}, got {n}")
    if not 32 <= int(size) <= 1024:
        raise InvalidDataset(f"Two-object shapes images must be between 32 and 1024 px, got {size}")
    c1, c2 = (int(c) for c in classes)
    k = len(SHAPE_CLASSES)
    if not (0 <= c1 < k and 0 <= c2 < k) or c1 == c2:
        raise InvalidDataset(f"A shapes pair needs two different classes in [0, {k}), got {classes!r}")
    n, size = int(n), int(size)
    g = torch.Generator().manual_seed(int(seed))
    first, second = _pair_params(n, size, c1, c2, g)
    images = torch.empty(n, 3, size, size)
    masks = torch.empty(n, 2, size, size, dtype=torch.bool)
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        img, masks[sl, 0] = _render({k: v[sl] for k, v in first.items()}, size)
        images[sl], masks[sl, 1] = _paint(img, {k: v[sl] for k, v in second.items()}, size)
    return images, masks
