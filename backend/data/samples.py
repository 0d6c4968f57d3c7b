"""A handful of scikit-image's shipped photos as demo inputs, with the ImageNet labels they should get.

The PNGs live in `assets/samples/` (committed; written from scikit-image once if missing), downscaled
so the repository stays small: the shorter side is 320 px, more than the 256 px any model resizes to.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from backend.config import ASSETS_DIR
from backend.errors import InvalidDataset

SAMPLES_DIR = ASSETS_DIR / "samples"
SAMPLE_NAMES = ("chelsea", "coffee", "rocket", "astronaut", "hubble_deep_field")
SHORT_SIDE = 320
# ImageNet class names (torchvision's spelling) a correct classifier may give each photo.
EXPECTED: dict[str, list[str]] = {
    "chelsea": ["tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"],
    "coffee": ["espresso"],
    "rocket": ["missile", "projectile"],
}


def _write(name: str, path: Path) -> None:
    import skimage.data

    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    scale = SHORT_SIDE / min(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    image.save(tmp, optimize=True)
    tmp.replace(path)


def sample_photos() -> dict[str, Path]:
    """name -> PNG path of every sample photo (created from scikit-image on first use)."""
    out = {}
    for name in SAMPLE_NAMES:
        path = SAMPLES_DIR / f"{name}.png"
        if not path.is_file():
            try:
                _write(name, path)
            except (ImportError, AttributeError, OSError) as err:
                msg = f"Sample photo {name} is missing at {path} and could not be made: {err}"
                raise InvalidDataset(msg) from err
        out[name] = path
    return out
