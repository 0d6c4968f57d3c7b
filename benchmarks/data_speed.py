"""Data path speed: our folder dataset + loader against torchvision's ImageFolder + DataLoader, and the
share of a CPU fooling step spent waiting for data.

Part 1 decodes a generated folder of JPEGs (default 2,000 at 500x375, cut from the sample photos with
random crops and flips) through both pipelines with the same transform (the checkpoint's
`Preprocessing.to_tensor`: resize 256, centre crop 224, normalise), the same batch and the same number
of worker processes, interleaved, and prints images/s and the ratio (goal: ours >= 0.9x torchvision).
Part 2 runs a short fooling job of EfficientNet-Lite0 (Grad-CAM, batch 32) on that folder on the CPU and
prints the trainer's own `data_wait`: the share of the run's time spent waiting for the next batch
(goal < 5%). Writes benchmarks/results/data_speed.md. Not a test; `--quick` proves it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_description, markdown_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "data_speed.md"
SIZE = (500, 375)


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    """`n` JPEGs of 500x375 in two class folders, cut from the sample photos (made once per n)."""
    from backend.data.images import load_image
    from backend.data.samples import sample_photos

    folder = root / f"jpegs-{n}"
    if (folder / "done").exists():
        return folder
    photos = [np.asarray(load_image(p)) for p in sample_photos().values()]
    rng = np.random.default_rng(seed)
    for c in ("first", "second"):
        (folder / c).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = Image.fromarray(photo[top : top + ch, left : left + cw]).resize(SIZE, Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.save(folder / ("first", "second")[i % 2] / f"{i:05d}.jpg", quality=90)
    (folder / "done").write_text("ok")
    return folder


def loaders(folder: Path, batch: int, workers: int):
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    from backend.data.datasets import build_dataset
    from backend.data.loader import make_loader
    from backend.models.preprocessing import Preprocessing

    pre = Preprocessing(size=224, resize=256)
    ours = build_dataset({"kind": "folder", "path": str(folder)}, pre, ["first", "second"])
    theirs = ImageFolder(str(folder), transform=pre.to_tensor)
    return {
        "ours": make_loader(ours, batch_size=batch, num_workers=workers),
        "torchvision": DataLoader(
            theirs, batch_size=batch, num_workers=workers, prefetch_factor=4 if workers else None
        ),
    }


def images_per_s(loader) -> float:
    began, n = time.perf_counter(), 0
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - began)


def loader_speed(folder: Path, batch: int, workers: int, repeats: int) -> dict[str, float]:
    contenders = loaders(folder, batch, workers)
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(repeats):  # interleaved, rotating order
        for name in names[r % 2 :] + names[: r % 2]:
            rates[name].append(images_per_s(contenders[name]))
    return {k: float(np.median(v)) for k, v in rates.items()}


def fooling_wait(folder: Path, batch: int, steps: int, workers: int) -> dict[str, float]:
    """A short Lite0 fooling run on the folder (CPU): the trainer's data_wait and step time."""
    from backend.fool.trainer import run_fooling
    from backend.models.registry import BUILTIN_ID, Registry

    Registry().ensure_builtin()
    infos: list[dict] = []
    cfg = {
        "model": BUILTIN_ID,
        "dataset": {"kind": "folder", "path": str(folder), "unlabelled": True},
        "classification": "original_predictions",
        "attack": "location",
        "interpreter": "gradcam",
        "batch_size": batch,
        "steps": steps,
        "val_size": 4,
        "num_workers": workers,
        "device": "cpu",
        "name": "data_speed benchmark (delete me)",
    }
    card = run_fooling(cfg, progress=lambda p: infos.append(p.extra) if "loss" in p.metrics else None)
    Registry().delete(card.id)
    last = infos[-1]
    return {"data_wait": last["data_wait"], "images_per_s": last["images_per_s"], "steps": len(infos)}


def main() -> None:
    from backend.data.loader import cpu_count

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=max(1, min(8, cpu_count() - 1)))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fool-steps", type=int, default=6)
    ap.add_argument("--root", type=Path, default=Path("/tmp/fooling-lab-data-speed"))
    ap.add_argument("--quick", action="store_true", help="200 images, 1 pass, 2 fooling steps at batch 8")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.quick:
        args.images, args.repeats, args.fool_steps, args.batch = 200, 1, 2, 8
    torch.manual_seed(0)
    folder = make_folder(args.root, args.images)
    speed = loader_speed(folder, args.batch, args.workers, args.repeats)
    ratio = speed["ours"] / speed["torchvision"]
    wait = fooling_wait(folder, args.batch, args.fool_steps, args.workers)
    machine = machine_description("cpu")
    rows = [
        ["ours (FolderDataset + make_loader)", f"{speed['ours']:.0f}", f"{ratio:.2f}x"],
        ["torchvision ImageFolder + DataLoader", f"{speed['torchvision']:.0f}", "1.00x"],
    ]
    text = "\n".join(
        [
            "## Data path: our loader vs torchvision, data wait of a CPU fooling step",
            "",
            f"Machine: {machine}. {args.images} JPEGs at 500x375 (from the sample photos), resize 256 + "
            f"crop 224 + normalise, batch {args.batch}, {args.workers} worker process(es), median of "
            f"{args.repeats} interleaved passes. Goal: ours >= 0.9x.",
            "",
            markdown_table(["pipeline", "images/s", "ratio"], rows),
            "",
            f"Fooling EfficientNet-Lite0 (Grad-CAM, Location, batch {args.batch}, {wait['steps']} steps, "
            f"CPU) on that folder: waiting for data {100 * wait['data_wait']:.1f}% of the run's time "
            f"(goal < 5%), {wait['images_per_s']:.1f} images/s.",
            "",
        ]
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
