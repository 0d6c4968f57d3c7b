"""Benchmark (not a test): the cost of one decoy, and of a whole decoy set for one image, against one
vanilla-gradient saliency map on the same model (paper 003, A10: one decoy = 37.7% of a gradient map).

    python benchmarks/decoy_speed.py [--repeats 5] [--vgg16]

Vanilla gradient is timed through the engine (`backend.explain`) and through captum's `Saliency`
(the anchor library) in the same run. Writes benchmarks/results/decoy_speed.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.decoys.enhanced import enhanced_saliency  # noqa: E402
from backend.decoys.features import pixel_normalizer  # noqa: E402
from backend.decoys.generate import DecoySettings, optimise_decoys  # noqa: E402
from backend.decoys.masks import patch_masks  # noqa: E402
from backend.explain import explain  # noqa: E402
from backend.models import zoo  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "decoy_speed.md"


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, model, size: int, settings: DecoySettings, repeats: int) -> list[dict]:
    from captum.attr import Saliency

    torch.manual_seed(0)
    x = torch.rand(3, size, size)
    norm = pixel_normalizer([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    target = int(model(norm(x[None])).argmax(1))
    one_mask = patch_masks(size, size, settings.patch, settings.stride)[:1]
    single = replace(settings, signs=(1,))
    grad_engine = timed(lambda: explain(model, norm(x[None]), target, "gradient"), repeats)
    sal = Saliency(model)
    grad_captum = timed(
        lambda: sal.attribute(norm(x[None]).requires_grad_(True), target=target, abs=False), repeats
    )
    paper = replace(single, paper_stop=True)
    rows = []
    for label, s in (("one decoy, fixed budget", single), ("one decoy, paper's stopping rule", paper)):
        t = timed(lambda s=s: optimise_decoys(model, x, norm, s, masks=one_mask), repeats)
        rows.append({"model": name, "what": label, "seconds": t})
    n_masks = patch_masks(size, size, settings.patch, settings.stride).shape[0] * len(settings.signs)
    full = timed(lambda: enhanced_saliency(model, x, norm, "gradient", settings), max(1, repeats // 3))
    rows.append({"model": name, "what": f"whole decoy set + Z ({n_masks} decoys, batched)", "seconds": full})
    for r in rows:
        r["vs_gradient"] = r["seconds"] / grad_engine
    rows.insert(
        0,
        {
            "model": name,
            "what": "vanilla gradient (captum Saliency)",
            "seconds": grad_captum,
            "vs_gradient": grad_captum / grad_engine,
        },
    )
    rows.insert(
        0, {"model": name, "what": "vanilla gradient (engine)", "seconds": grad_engine, "vs_gradient": 1.0}
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--threads", type=int, default=1, help="intra-op threads (1 avoids stalls on a shared CPU)"
    )
    ap.add_argument("--vgg16", action="store_true", help="also VGG16 at 224 px, layer 3 (Table A2); slow")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    shapes = zoo.build("shapes_cnn").eval()
    rows += bench("shapes_cnn 64px", shapes, 64, DecoySettings(patch=8, stride=8, steps=40), args.repeats)
    if args.vgg16:
        vgg = zoo.build("vgg16").eval()
        s = DecoySettings(layer="features.3", patch=3, stride=112, steps=20)
        rows += bench("vgg16 224px (random init)", vgg, 224, s, max(1, args.repeats // 2))
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), load average "
        f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())} at the start (shared machine)"
    )
    lines = [
        "# Decoy speed",
        "",
        f"Machine: {machine}. Median of {args.repeats} runs after a warm-up, batch of one image, CPU.",
        "Paper 003 (A10): one decoy costs 37.7% of one vanilla-gradient map (their CPU, VGG16).",
        "",
        "| model | what | seconds | x vanilla gradient |",
        "| --- | --- | ---: | ---: |",
    ]
    lines += [f"| {r['model']} | {r['what']} | {r['seconds']:.4f} | {r['vs_gradient']:.2f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
