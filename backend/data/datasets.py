"""Datasets for jobs, built from a small JSON-able spec: synthetic shapes, an image folder, sample photos.

Every item is `(x_normalised (3,H,W), label (-1 = unlabelled), mask (H,W) float or an empty tensor)`.
Labels are indices into the *checkpoint's* classes (`classes`, from its card), never the dataset's own
order: folders are matched to the classes by name (`backend.data.labels`), the shapes set's and the
sample photos' class names likewise; an image whose class the checkpoint does not have is unlabelled.
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
from backend.data.labels import ClassMapping, find_class, match_folders
from backend.data.samples import EXPECTED, sample_photos
from backend.data.shapes import MAX_IMAGES, SHAPE_CLASSES, make_shape_pairs, make_shapes
from backend.errors import InvalidConfig, InvalidDataset
from backend.models.preprocessing import Preprocessing

DATASET_KINDS = ("shapes", "folder", "samples")
_EMPTY = torch.empty(0)


def _int(spec: dict, key: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(spec.get(key, default))
    except (TypeError, ValueError) as err:
        raise InvalidDataset(f"Dataset option {key!r} must be an integer, got {spec.get(key)!r}") from err
    if not lo <= value <= hi:
        raise InvalidDataset(f"Dataset option {key!r} must be between {lo} and {hi}, got {value}")
    return value


def check_specs(*specs: dict | None) -> None:
    """A job config's dataset specs (None = not given) checked, as the config error a form shows."""
    for spec in specs:
        if spec is not None:
            try:
                validate_spec(spec)
            except InvalidDataset as err:
                raise InvalidConfig(f"Dataset problem: {err}") from err


def validate_spec(spec: dict) -> dict:
    """The spec with defaults filled in; raises `InvalidDataset` saying what to fix."""
    if not isinstance(spec, dict) or spec.get("kind") not in DATASET_KINDS:
        got = spec.get("kind") if isinstance(spec, dict) else spec
        raise InvalidDataset(f"Dataset kind must be one of {', '.join(DATASET_KINDS)}, got {got!r}")
    kind = spec["kind"]
    allowed = {
        "shapes": {"n", "size", "seed", "pair", "pair_fraction"},
        "folder": {"path", "limit", "class_map", "unlabelled"},
        "samples": {"augment", "seed"},
    }
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
        if spec.get("pair") is not None:
            out.update(_pair_options(spec))
        elif "pair_fraction" in spec:
            raise InvalidDataset("'pair_fraction' needs 'pair': the two classes of the two-object images")
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
        if spec.get("class_map"):
            mapping = spec["class_map"]
            if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
                raise InvalidDataset(
                    '\'class_map\' must be a JSON object {"folder": "class name or index"}, '
                    f"not {mapping!r}"
                )
            out["class_map"] = dict(mapping)
        if spec.get("unlabelled"):
            out["unlabelled"] = True
        return out
    augment = _int(spec, "augment", 0, 0, 1000)
    return {"kind": kind, "augment": augment, "seed": _int(spec, "seed", 0, 0, 2**31)}


def _pair_options(spec: dict) -> dict:
    """`pair`: two different shape classes, by name ("circle") or by index into `SHAPE_CLASSES`."""
    from backend.data.labels import class_index

    pair, k = spec["pair"], len(SHAPE_CLASSES)
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise InvalidDataset(f"'pair' must be two different shape classes (names or indices), got {pair!r}")
    try:
        pair = [class_index(c, SHAPE_CLASSES, "'pair'") for c in pair]
    except InvalidDataset as err:
        raise InvalidDataset(f"'pair' must be two different shape classes (names or indices): {err}") from err
    if pair[0] == pair[1]:
        raise InvalidDataset(
            f"'pair' must be two different classes in [0, {k}) ({SHAPE_CLASSES}), got {pair!r}"
        )
    try:
        fraction = float(spec.get("pair_fraction", 0.5))
    except (TypeError, ValueError) as err:
        raise InvalidDataset(f"'pair_fraction' must be a number, got {spec['pair_fraction']!r}") from err
    if not 0.0 < fraction <= 1.0:
        raise InvalidDataset(f"'pair_fraction' must be in (0, 1], got {fraction}")
    return {"pair": [int(pair[0]), int(pair[1])], "pair_fraction": fraction}


def _shapes_with_pairs(n: int, size: int, seed: int, pair: list[int], fraction: float):
    """Single-object images mixed (in a seeded order) with unlabelled two-object images of `pair`."""
    n_pairs = max(1, round(n * fraction))
    pair_images, pair_masks = make_shape_pairs(n_pairs, size, seed + 1, tuple(pair))
    parts = [(pair_images, torch.full((n_pairs,), -1, dtype=torch.long), pair_masks.any(1))]
    if n_pairs < n:
        parts.insert(0, make_shapes(n - n_pairs, size, seed))
    images, labels, masks = (torch.cat(column) for column in zip(*parts))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))
    return images[order], labels[order], masks[order]


def shapes_label_map(classes: list[str] | None) -> torch.Tensor:
    """Shape index -> the checkpoint's class index (-1 where it has no such class)."""
    if classes is None or list(classes) == SHAPE_CLASSES:
        return torch.arange(len(SHAPE_CLASSES))
    return torch.tensor([_or_unlabelled(find_class(name, classes)) for name in SHAPE_CLASSES])


def _or_unlabelled(index: int | None) -> int:
    return -1 if index is None else index


class ShapesDataset(Dataset):
    """Synthetic shapes at the model's input size, normalised, with float masks.

    With `pair` = [c1, c2], a `pair_fraction` of the images show a c1 and a c2 object side by side,
    unlabelled (-1): the images Active fooling swaps the two classes' explanations on.
    """

    in_memory = True  # items are ready tensors: a DataLoader gains nothing from worker processes

    def __init__(
        self,
        n: int,
        seed: int,
        size: int,
        pre: Preprocessing,
        pair: list[int] | None = None,
        pair_fraction: float = 0.5,
        classes: list[str] | None = None,
    ) -> None:
        if pair is None:
            images, labels, masks = make_shapes(n, size, seed)
        else:
            images, labels, masks = _shapes_with_pairs(n, size, seed, pair, pair_fraction)
        to_checkpoint = shapes_label_map(classes)
        self.labels = torch.where(labels >= 0, to_checkpoint[labels.clamp_min(0)], labels)
        if size != pre.size:
            images = F.interpolate(images, size=(pre.size, pre.size), mode="bilinear", antialias=True)
            masks = F.interpolate(masks[:, None].float(), size=(pre.size, pre.size), mode="nearest")[:, 0] > 0
        self.x = pre.normalize(images)
        self.masks = masks.float()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        return self.x[i], int(self.labels[i]), self.masks[i]


def folder_mapping(spec: dict, classes: list[str] | None) -> ClassMapping | None:
    """How a folder spec's class folders map onto `classes` (None: unlabelled); `InvalidDataset` if not."""
    _, folders = scan_folder(spec["path"])
    if not folders or spec.get("unlabelled") or classes is None:
        return None
    return match_folders(folders, classes, spec.get("class_map"))


class FolderDataset(Dataset):
    """Images of a folder, decoded lazily; class folders labelled with the checkpoint's class indices.

    Without `classes` (no checkpoint to label for), or with `unlabelled`, every image is unlabelled.
    """

    def __init__(
        self,
        path: str,
        pre: Preprocessing,
        limit: int | None = None,
        classes: list[str] | None = None,
        class_map: dict | None = None,
        unlabelled: bool = False,
    ) -> None:
        items, self.folders = scan_folder(path)
        spec = {"path": path, "class_map": class_map, "unlabelled": unlabelled}
        self.mapping = folder_mapping(spec, classes)
        if self.mapping is None:
            items = [(p, -1) for p, _ in items]
        else:
            to_class = [self.mapping.folders[f] for f in self.folders]
            items = [(p, to_class[label] if label >= 0 else -1) for p, label in items]
        self.items = items[:limit] if limit else items
        self.pre = pre

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        path, label = self.items[i]
        return self.pre.to_tensor(load_image(path)), label, _EMPTY


def sample_labels(classes: list[str] | None) -> dict[str, int]:
    """Each sample photo's class index in `classes`: labelled only where the checkpoint has its class."""
    out = {}
    for name in sample_photos():
        found = find_class(EXPECTED[name][0], classes) if classes and name in EXPECTED else None
        out[name] = _or_unlabelled(found)
    return out


class SamplesDataset(Dataset):
    """The sample photos, each optionally in `augment` random variants; labelled for ImageNet models."""

    def __init__(self, augment: int, seed: int, pre: Preprocessing, classes: list[str] | None = None) -> None:
        self.pre, self.augment, self.seed = pre, augment, seed
        self.photos = [(load_image(path), name) for name, path in sample_photos().items()]
        labels = sample_labels(classes)
        self.labels = [labels[name] for _, name in self.photos]

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


def build_dataset(spec: dict, preprocessing: Preprocessing, classes: list[str] | None = None) -> Dataset:
    """The dataset of `spec`, labelled with indices into `classes` (the checkpoint card's classes).

    `classes=None` only where labels do not matter (counting images): folders and sample photos are then
    unlabelled and shapes keep the shapes set's own indices.
    """
    spec = validate_spec(spec)
    if spec["kind"] == "shapes":
        size = spec.get("size", preprocessing.size)
        pairs = {k: spec[k] for k in ("pair", "pair_fraction") if k in spec}
        return ShapesDataset(spec["n"], spec["seed"], size, preprocessing, classes=classes, **pairs)
    if spec["kind"] == "folder":
        options = {k: spec[k] for k in ("class_map", "unlabelled") if k in spec}
        return FolderDataset(spec["path"], preprocessing, spec.get("limit"), classes, **options)
    return SamplesDataset(spec["augment"], spec["seed"], preprocessing, classes)


def label_check(spec: dict, classes: list[str]) -> dict:
    """Before a job starts: how the spec's images will be labelled for a checkpoint with `classes`.

    Returns `{"labelled": bool (some image can carry a label), "mapping": [lines] (folders only)}`;
    raises `InvalidDataset` for a class folder that matches no class (naming the closest ones).
    """
    spec = validate_spec(spec)
    if spec["kind"] == "folder":
        mapping = folder_mapping(spec, classes)
        return {"labelled": mapping is not None, "mapping": mapping.describe() if mapping else []}
    if spec["kind"] == "samples":
        return {"labelled": any(i >= 0 for i in sample_labels(classes).values()), "mapping": []}
    return {"labelled": bool((shapes_label_map(classes) >= 0).any()), "mapping": []}
