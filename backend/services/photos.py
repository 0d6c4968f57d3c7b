"""Images the user looks at: uploads (validated by backend.data.images), sample photos, synthetic shapes.

Every photo carries the sha256 of its bytes, which keys the heatmap cache.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Photo:
    name: str
    sha256: str
    image: Image.Image  # RGB


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def read_photo(name: str, data: bytes) -> Photo:
    """Decode an uploaded file; `InvalidImage` for non-images, truncated or oversized files."""
    from backend.data.images import load_image

    image = load_image(data)
    return Photo(name=name, sha256=hashlib.sha256(data).hexdigest(), image=image)


def sample_photos() -> list[Photo]:
    """The shipped sample photos (assets/samples), sorted by name."""
    from backend.data.samples import sample_photos as shipped

    return [read_photo(name, path.read_bytes()) for name, path in sorted(shipped().items())]


def synthetic_photos(n: int = 4, size: int = 64, seed: int = 0) -> list[Photo]:
    """Synthetic shapes images, named after their class, as PNG-backed photos."""
    from backend.data.shapes import SHAPE_CLASSES, make_shapes

    images, labels, _ = make_shapes(n, size=size, seed=seed)
    photos = []
    for i in range(n):
        arr = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        img = Image.fromarray(arr, mode="RGB")
        data = _png_bytes(img)
        name = f"shape{i}-{SHAPE_CLASSES[int(labels[i])]}"
        photos.append(Photo(name=name, sha256=hashlib.sha256(data).hexdigest(), image=img))
    return photos
