"""Fooling at ImageNet scale on a GPU: per architecture and batch, a plain training step against fooling
steps with Grad-CAM, LRP_T and full LRP in the loss (ms, ratio to the plain step), images/s and peak GPU
memory, in mixed precision (fp16 + GradScaler on CUDA); then a short real fooling run of
EfficientNet-Lite0 on the sample photos through the trainer.

Architectures: VGG19, ResNet50, DenseNet121, EfficientNet-Lite0 at 224 px, batches 8 and 32, random
init (the step's cost does not depend on the weights). `--quick` (e.g. with `--device cpu` to prove the
script runs): 64 px, batch 2, two timed repeats, a 2-step run. `--out PATH` writes PATH.json and PATH.md.
Imports only torch, torchvision, safetensors, numpy, PIL and backend modules that need nothing else
(the GPU machine has no captum / zennit / streamlit / diskcache / huey); tests/test_gpu_scripts.py
checks that. Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.fool.losses import FOOLING_ATTACKS  # noqa: E402
from backend.fool.objective import Interpreter, fooling_loss  # noqa: E402
from backend.fool.precision import precision_for  # noqa: E402
from backend.models import zoo  # noqa: E402
from benchmarks.common import machine_description, markdown_table, time_interleaved  # noqa: E402

ARCHS = ("vgg19", "resnet50", "densenet121", "efficientnet_lite0")
INTERPRETERS = ("gradcam", "lrp_t", "lrp")


def step_fns(arch: str, batch: int, size: int, device: torch.device) -> dict:
    """One optimiser step per contender on random images: plain cross-entropy, then each fooling loss."""
    model = zoo.build(arch, 1000).to(device).eval()  # eval: BatchNorm frozen, as the fooling default
    original = zoo.build(arch, 1000).to(device).eval().requires_grad_(False)
    original.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g).to(device)
    y = torch.randint(0, 1000, (batch,), generator=g).to(device)
    attack = FOOLING_ATTACKS["location"]
    attack_cfg = attack.setup({}, size, 1000)

    def run(loss_fn):
        precision = precision_for(device, True)  # timing only: bf16 on the CPU for every method
        scaler = precision.scaler()

        def step():
            opt.zero_grad(set_to_none=True)
            with precision.autocast():
                loss = loss_fn()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

        return step

    fns = {"plain": run(lambda: torch.nn.functional.cross_entropy(model(x), y))}
    for name in INTERPRETERS:
        interp = Interpreter(name, {})

        def loss(interp=interp):
            return fooling_loss(
                model, original, x, y, attack=attack, attack_cfg=attack_cfg, interpreter=interp,
                lam=1.0, classification="labels",
            ).loss  # fmt: skip

        fns[name] = run(loss)
    return fns


def peak_memory(fn, device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(device) / 2**30


def bench_arch(arch: str, batch: int, size: int, device: torch.device, repeats: int) -> list[dict]:
    fns = step_fns(arch, batch, size, device)
    times = time_interleaved(fns, repeats=repeats, warmup=1, device=str(device))
    rows = []
    for name, seconds in times.items():
        rows.append(
            {
                "arch": arch,
                "batch": batch,
                "step": name,
                "ms": 1000 * seconds,
                "ratio": seconds / times["plain"],
                "images_per_s": batch / seconds,
                "peak_gib": peak_memory(fns[name], device),
            }
        )
        print(
            f"{arch:18s} batch {batch:3d} {name:8s} {1000 * seconds:9.1f} ms  "
            f"x{seconds / times['plain']:.2f}  {batch / seconds:7.1f} img/s"
        )
    del fns
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def real_run(device: torch.device, steps: int, batch: int) -> dict:
    """A short fooling job of EfficientNet-Lite0 (its shipped ImageNet weights when installed, else
    random init, said in the result) on the augmented sample photos, through run_fooling."""
    from backend.errors import FoolingLabError
    from backend.fool.trainer import run_fooling
    from backend.models.registry import Registry

    registry = Registry(Path(tempfile.mkdtemp(prefix="gpu-fool-models-")))
    try:
        card = registry.ensure_builtin()[0]
        weights = "shipped ImageNet weights"
    except (FoolingLabError, ImportError):
        spec = zoo.spec("efficientnet_lite0")
        card = registry.save(
            zoo.build("efficientnet_lite0", 1000), name="Lite0 random", architecture=spec.name,
            classes=zoo.imagenet_classes(), preprocessing=spec.preprocessing, kind="pretrained",
        )  # fmt: skip
        weights = "random init (the weights package is not installed)"
    cfg = {
        "model": card.id,
        "dataset": {"kind": "samples", "augment": 16, "seed": 0},
        "classification": "original_predictions",
        "attack": "location",
        "interpreter": "gradcam",
        "batch_size": batch,
        "steps": steps,
        "lr": 1e-5,
        "lam": 1.0,
        "val_size": 16,
        "mixed_precision": device.type == "cuda",  # bf16 would refuse Grad-CAM on the CPU
        "device": str(device),
    }
    infos: list[dict] = []
    began = time.perf_counter()
    fooled = run_fooling(cfg, progress=lambda p: infos.append(p.extra), registry=registry)
    seconds = time.perf_counter() - began
    last = [i for i in infos if "loss" in i][-1]
    return {
        "weights": weights,
        "steps": steps,
        "batch": batch,
        "seconds": seconds,
        "images_per_s": last["images_per_s"],
        "data_wait": last["data_wait"],
        "val_fsr": fooled.metrics.get("val_fsr"),
        "val_agreement": fooled.metrics.get("val_agreement"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="64 px, batch 2, 2 repeats, a 2-step run")
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--out", type=Path, default=None, help="PATH: writes PATH.json and PATH.md")
    args = ap.parse_args()
    device = torch.device(args.device)
    size, batches, repeats, steps = (64, (2,), 2, 2) if args.quick else (224, (8, 32), 5, 30)
    rows: list[dict] = []
    for arch in args.archs.split(","):
        for batch in batches:
            rows += bench_arch(arch, batch, size, device, repeats)
    run = real_run(device, steps, 8 if not args.quick else 4)
    print(f"real run: {run}")
    machine = machine_description(str(device))
    table = markdown_table(
        ["architecture", "batch", "step", "ms", "x plain", "images/s", "peak GiB"],
        [
            [
                r["arch"], str(r["batch"]), r["step"], f"{r['ms']:.1f}", f"{r['ratio']:.2f}",
                f"{r['images_per_s']:.1f}", "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}",
            ]
            for r in rows
        ],
    )  # fmt: skip
    text = (
        f"## Fooling at ImageNet scale ({'fp16' if device.type == 'cuda' else 'bf16'}, {size} px)\n\n"
        f"Machine: {machine}.\n\n{table}\n\nShort real run (EfficientNet-Lite0, {run['weights']}, "
        f"Grad-CAM Location, {run['steps']} steps at batch {run['batch']}): {run['seconds']:.1f} s, "
        f"{run['images_per_s']:.1f} images/s, data wait {100 * run['data_wait']:.1f}%, "
        f"val FSR {run['val_fsr']}, agreement {run['val_agreement']}.\n"
    )
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows, "run": run}))
        args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
