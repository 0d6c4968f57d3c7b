"""`python -m backend explain --model ID|ARCH --image PATH --methods gradient,gradcam --out DIR`.

Writes one PNG per method (the heatmap over the model's view of the image) and prints the top-5 classes.
torch and friends are imported inside the functions: every `python -m backend` command (a worker start
too) imports this module to register its parser, and must not pay torch's import time for it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from backend.errors import CheckpointNotFound, InvalidConfig, UnknownMethod

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from backend.models.preprocessing import Preprocessing

OVERLAY_OPACITY = 0.55


def register(subparsers) -> None:
    p = subparsers.add_parser("explain", help="heatmaps of one image as PNGs, and the top-5 classes")
    p.add_argument("--model", default="efficientnet_lite0", help="a registry id or an architecture name")
    p.add_argument("--weights", type=Path, help="weights file for an architecture name (else the hub cache)")
    p.add_argument("--image", type=Path, required=True, help="the image to explain")
    p.add_argument("--methods", default="gradient,gradcam", help="comma-separated method names")
    p.add_argument("--target", type=int, help="class index to explain (default: the predicted class)")
    p.add_argument("--out", type=Path, default=Path("explanations"), help="folder for the PNGs")
    p.set_defaults(func=main)


def resolve_model(name: str, weights: Path | None = None) -> tuple[nn.Module, list[str], Preprocessing]:
    """A registry checkpoint by id, else an architecture with its pretrained weights."""
    from backend.config import get_settings
    from backend.models import zoo
    from backend.models.registry import BUILTIN_ID, Registry

    registry = Registry()
    if name in zoo.ARCHITECTURES:
        if name == "efficientnet_lite0" and weights is None:
            registry.ensure_builtin()
            name = BUILTIN_ID
        else:
            spec = zoo.spec(name)
            model = zoo.load_pretrained(name, weights).to(get_settings().device)
            model.input_range = spec.preprocessing.input_range  # LRP's bounds, as a checkpoint's model has
            return model, spec.classes(), spec.preprocessing
    try:
        checkpoint = registry.get(name)
    except CheckpointNotFound as err:
        known = ", ".join(zoo.ARCHITECTURES)
        raise CheckpointNotFound(f"{err} Or name an architecture: {known}.") from err
    if checkpoint.modality != "image":
        raise InvalidConfig(
            f"{checkpoint.name} is not an image model; explain its rows with "
            "`python -m backend tabular explain`."
        )
    return checkpoint.model, checkpoint.classes, checkpoint.image_preprocessing


def overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """uint8 RGB: the image blended with the colourised |heatmap| (scaled to its own maximum)."""
    import numpy as np

    from backend.services.figures import colorize

    colours = colorize(heatmap, signed=False).astype(np.float32)
    return (image.astype(np.float32) * (1 - OVERLAY_OPACITY) + colours * OVERLAY_OPACITY).astype(np.uint8)


def top_k(logits: torch.Tensor, classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    probs = logits.float().softmax(-1)[0]
    values, indices = probs.topk(min(k, probs.numel()))
    return [(classes[i] if i < len(classes) else str(i), float(v)) for v, i in zip(values, indices.tolist())]


def main(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    import torchvision.transforms.functional as TF
    from PIL import Image

    from backend.data.images import load_image
    from backend.explain import METHODS, explain

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        names = ", ".join(unknown) or "(none)"
        raise UnknownMethod(f"Unknown method(s) {names}; known: {', '.join(METHODS)}")
    model, classes, pre = resolve_model(args.model, args.weights)
    if args.target is not None and not 0 <= args.target < len(classes):
        raise InvalidConfig(f"--target must be a class index in [0, {len(classes) - 1}], got {args.target}")
    view = pre.resize_crop(load_image(args.image))
    device = next(model.parameters()).device
    x = pre.normalize(TF.to_tensor(view)).unsqueeze(0).to(device)  # `view` is already resized
    with torch.no_grad():
        logits = model(x)
    print(f"top-5 classes of {args.image.name} ({args.model}):")
    for rank, (label, prob) in enumerate(top_k(logits, classes), 1):
        print(f"  {rank}. {label:30s} {prob:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    image = np.asarray(view, dtype=np.uint8)
    for method in methods:
        result = explain(model, x, args.target, method)
        heat = result.heatmap[0].detach().float().cpu().numpy()
        path = args.out / f"{args.image.stem}_{method}.png"
        Image.fromarray(overlay(image, heat)).save(path)
        print(f"wrote {path}")
    return 0
