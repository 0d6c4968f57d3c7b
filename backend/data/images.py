"""Open any image a person might upload as an RGB PIL image, or say clearly why not.

Handles palette / grayscale / alpha / 16-bit images, EXIF orientation, truncated files and
decompression bombs. Big photos are downscaled while loading (JPEG draft mode decodes at 1/2..1/8 scale
directly), so a 50-megapixel photo loads fast; above `MAX_PIXELS` the image is refused.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from backend.errors import InvalidImage

MAX_PIXELS = 100_000_000  # refuse above ~100 MP: decoding alone would need gigabytes
MAX_SIDE = 2048  # longer side after loading; explanations never need more
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def load_image(source: bytes | str | Path | BinaryIO, *, max_side: int = MAX_SIDE) -> Image.Image:
    """Decode `source` into an RGB image whose longer side is at most `max_side`."""
    name = str(source) if isinstance(source, str | Path) else "the uploaded file"
    data = _read_bytes(source, name)
    if not data:
        raise InvalidImage(f"{name} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own MAX_PIXELS decides
            image = Image.open(io.BytesIO(data))
            pixels = image.width * image.height
            if pixels > MAX_PIXELS:
                raise InvalidImage(_too_big(name, image.width, image.height))
            if pixels == 0:
                raise InvalidImage(f"{name} has zero width or height.")
            if image.format == "JPEG" and max(image.size) > max_side:
                image.draft("RGB", _draft_size(image.size, max_side))
            image.load()
    except InvalidImage:
        raise
    except Image.DecompressionBombError as err:
        raise InvalidImage(f"{name} declares an enormous size (a decompression bomb?): {err}") from err
    except UnidentifiedImageError as err:
        raise InvalidImage(f"{name} is not an image PIL can read (PNG, JPEG, BMP, GIF, WebP, TIFF).") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise InvalidImage(f"{name} could not be decoded (truncated or corrupt?): {err}") from err
    image = ImageOps.exif_transpose(image) or image
    image = _to_rgb(image)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def _read_bytes(source: bytes | str | Path | BinaryIO, name: str) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InvalidImage(f"{path} does not exist or is not a file.")
        if path.stat().st_size > 512 * 1024 * 1024:
            raise InvalidImage(f"{path.name} is larger than 512 MiB; use a smaller image.")
        return path.read_bytes()
    if hasattr(source, "read"):
        return source.read()
    raise InvalidImage(f"Cannot read an image from a {type(source).__name__}.")


def _too_big(name: str, width: int, height: int) -> str:
    return (
        f"{name} is {width}x{height} ({width * height / 1e6:.0f} megapixels); the limit is "
        f"{MAX_PIXELS / 1e6:.0f} MP. Downscale it first."
    )


def _draft_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    scale = max_side / max(size)
    return (max(1, int(size[0] * scale)), max(1, int(size[1] * scale)))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode -> RGB; alpha is composited on white, 16-bit and float images are rescaled to 8 bit."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        hi = 65535.0 if image.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        image = Image.fromarray(arr, mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
