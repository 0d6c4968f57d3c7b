"""Heo2019's D_fool for Active fooling: images that show both classes, built from two class folders.

Active fooling swaps the explanations of c1 and c2 on images where both appear (Heo2019 used images of
a fire truck and an African elephant together). Such photos are rare, so the builder composes them: two
photos side by side (each resized to half the width), or the c2 photo pasted at a random place and scale
onto the c1 photo. Which side and where come from the seed, so a folder is rebuilt identically. The
result is an unlabelled folder (`{"kind": "folder", "path": out, "unlabelled": true}`), the Active
attack's "unlabelled" images.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

from backend.data.folders import scan_folder
from backend.data.images import load_image
from backend.errors import InvalidDataset

MODES = ("side_by_side", "paste")


def _images(folder: str | Path) -> list[Path]:
    items, _ = scan_folder(folder)
    if not items:
        raise InvalidDataset(f"{folder} holds no images; give a folder of the class's photos.")
    return [Path(p) for p, _ in items]


def compose(first: Image.Image, second: Image.Image, size: int, mode: str, rng: random.Random) -> Image.Image:
    """One size x size image showing both photos (`mode` side_by_side or paste)."""
    if mode not in MODES:
        raise InvalidDataset(f"Unknown pair mode {mode!r}; choose one of {', '.join(MODES)}.")
    canvas = first.convert("RGB").resize((size, size), Image.BILINEAR)
    if mode == "side_by_side":
        half = size // 2
        left, right = (first, second) if rng.random() < 0.5 else (second, first)
        canvas.paste(left.convert("RGB").resize((half, size), Image.BILINEAR), (0, 0))
        canvas.paste(right.convert("RGB").resize((size - half, size), Image.BILINEAR), (half, 0))
        return canvas
    side = int(size * rng.uniform(0.4, 0.6))
    top, left = rng.randint(0, size - side), rng.randint(0, size - side)
    canvas.paste(second.convert("RGB").resize((side, side), Image.BILINEAR), (left, top))
    return canvas


def build_pair_folder(
    folder_c1: str | Path,
    folder_c2: str | Path,
    out: str | Path,
    n: int = 200,
    size: int = 256,
    seed: int = 0,
    mode: str = "side_by_side",
) -> Path:
    """Write `n` composites (JPEG, `size` px) showing a c1 and a c2 photo into `out`; returns `out`."""
    if n < 1:
        raise InvalidDataset(f"n must be >= 1, not {n}.")
    c1, c2 = _images(folder_c1), _images(folder_c2)
    rng = random.Random(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        first, second = load_image(rng.choice(c1)), load_image(rng.choice(c2))
        compose(first, second, size, mode, rng).save(out / f"pair-{i:05d}.jpg", quality=95)
    return out
