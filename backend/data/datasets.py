"""Datasets for jobs, built from a small JSON-able spec: synthetic shapes, an image folder, sample photos.

Every item is `(x_normalised (3,H,W), label (-1 = unlabelled), mask (H,W) float or an empty tensor)`.
Augmented sample photos draw their random crop / flip / colour jitter from (seed, index), so an item is
the same whichever worker or epoch asks for it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch.utils.data import Dataset

from backend.data.folders import scan_folder
from backend.data.images import load_image
from backend.data.samples import EXPECTED, sample_photos
from backend.data.shapes import MAX_IMAGES, make_shapes
from backend.errors import InvalidDataset
from backend.models.preprocessing import Preprocessing

KINDS = ("shapes", "folder", "samples")
_EMPTY = torch.empty(0)


def _int(spec: dict, key: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(spec.get(key, default))
    except (TypeError, ValueError) as err:
        raise InvalidDataset(f"Dataset option {key!r} must be an integer, got {spec.get(key)!r}") from err
    if not lo <= value <= hi:
        raise InvalidDataset(f"Dataset option {key!r} must be between {lo} and {hi}, got {value}")
    return value


def validate_spec(spec: dict) -> dict:
    """The spec with defaults filled in; raises `InvalidDataset` saying what to fix."""
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        got = spec.get("kind") if isinstance(spec, dict) else spec
        raise InvalidDataset(f"Dataset kind must be one of {', '.join(KINDS)}, got {got!r}")
    kind = spec["kind"]
    allowed = {"shapes": {"n", "size", "seed"}, "folder": {"path", "limit"}, "samples": {"augment", "seed"}}
    unknown = set(spec) - allowed[kind] - {"kind"}
    if unknown:
        raise InvalidDataset(f"Unknown options for a {kind} dataset: {', '.join(sorted(unknown))}")
    if kind == "shapes":
        out = {
            "kind": kind,
            "n": _int(spec, "n", 512, 1, MAX_IMAGES),
            "seed": _int(spec, "seed", 0, 0, 2**31),
        }
        if "size" in spec:
            out["size"] = _int(spec, "size", 64, 16, 1024)
        return out
    if kind == "folder":
        if not spec.get("path"):
            raise InvalidDataset("A folder dataset needs a 'path'")
        path = Path(str(spec["path"]))
        if not path.is_dir():
            raise InvalidDataset(f"Dataset folder {path} does not exist")
        out = {"kind": kind, "path": str(path)}
        if "limit" in spec:
            out["limit"] = _int(spec, "limit", 0, 1, 10_000_000)
        return out
    augment = _int(spec, "augment", 0, 0, 1000)
    return {"kind": kind, "augment": augment, "seed": _int(spec, "seed", 0, 0, 2**31)}


class ShapesDataset(Dataset):
    """Synthetic shapes at the model's input size, normalised, with float masks."""

    def __init__(self, n: int, seed: int, size: int, pre: Preprocessing) -> None:
        images, self.labels, masks = make_shapes(n, size, seed)
        if size != pre.size:
            images = F.interpolate(images, size=(pre.size, pre.size), mode="bilinear", antialias=True)
            masks = F.interpolate(masks[:, None].float(), size=(pre.size, pre.size), mode="nearest")[:, 0] > 0
        self.x = pre.normalize(images)
        self.masks = masks.float()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        return self.x[i], int(self.labels[i]), self.masks[i]


class FolderDataset(Dataset):
    """Images of a folder (class-per-folder or unlabelled), decoded lazily."""

    def __init__(self, path: str, pre: Preprocessing, limit: int | None = None) -> None:
        self.items, self.classes = scan_folder(path)
        if limit:
            self.items = self.items[:limit]
        self.pre = pre

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        path, label = self.items[i]
        return self.pre.to_tensor(load_image(path)), label, _EMPTY


class SamplesDataset(Dataset):
    """The sample photos (ImageNet labels where known), each optionally in `augment` random variants."""

    def __init__(self, augment: int, seed: int, pre: Preprocessing) -> None:
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        self.pre, self.augment, self.seed = pre, augment, seed
        self.photos = [(load_image(path), name) for name, path in sample_photos().items()]
        names = [name for _, name in self.photos]
        self.labels = [_IMAGENET_CATEGORIES.index(EXPECTED[n][0]) if n in EXPECTED else -1 for n in names]

    def __len__(self) -> int:
        return len(self.photos) * max(1, self.augment)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        k = max(1, self.augment)
        image, _ = self.photos[i // k]
        label = self.labels[i // k]
        if self.augment == 0:
            return self.pre.to_tensor(image), label, _EMPTY
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return self.pre.normalize(_augment(TF.to_tensor(image), self.pre, g)), label, _EMPTY


def _augment(x: torch.Tensor, pre: Preprocessing, g: torch.Generator) -> torch.Tensor:
    """Random resized crop (35-100% of the area), horizontal flip, brightness/contrast/saturation jitter."""
    _, h, w = x.shape
    u = torch.rand(7, generator=g).tolist()
    area = (0.35 + 0.65 * u[0]) * h * w
    ratio = (3 / 4) * (16 / 9) ** u[1]
    ch = min(h, int(round((area / ratio) ** 0.5)))
    cw = min(w, int(round((area * ratio) ** 0.5)))
    top, left = int(u[2] * (h - ch)), int(u[3] * (w - cw))
    x = TF.resized_crop(x, top, left, ch, cw, [pre.size, pre.size], antialias=True)
    if u[4] < 0.5:
        x = x.flip(-1)
    x = TF.adjust_brightness(x, 0.75 + 0.5 * u[5])
    x = TF.adjust_contrast(x, 0.75 + 0.5 * u[6])
    return x.clamp(0, 1)


def build_dataset(spec: dict, preprocessing: Preprocessing) -> Dataset:
    spec = validate_spec(spec)
    if spec["kind"] == "shapes":
        return ShapesDataset(spec["n"], spec["seed"], spec.get("size", preprocessing.size), preprocessing)
    if spec["kind"] == "folder":
        return FolderDataset(spec["path"], preprocessing, spec.get("limit"))
    return SamplesDataset(spec["augment"], spec["seed"], preprocessing)
