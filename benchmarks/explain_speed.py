"""Speed of every explanation method next to captum / zennit / pytorch-grad-cam on the same batch.

EfficientNet-Lite0 at 224 px (batch 8) and CIFAR VGG16 at 32 px (batch 64), random or shipped weights;
median of interleaved runs after a warm-up. Targets: each method at most as slow as the fastest library
that offers it, and LRP at most 2x our plain Gradient. Prints the table and writes
benchmarks/results/explain_speed.md. Not a test.

    python benchmarks/explain_speed.py [--repeats 5] [--device cpu] [--models lite0,cifar_vgg16]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.explain import explain  # noqa: E402
from backend.explain.lrp.canonizers import layout  # noqa: E402
from backend.models import zoo  # noqa: E402
from benchmarks.common import machine_description, markdown_table, time_interleaved  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "explain_speed.md"

# Per model: (zoo name, image size, batch, method params that keep one call affordable on a CPU)
SETUPS = {
    "lite0": (
        "efficientnet_lite0",
        224,
        8,
        {
            "integrated_gradients": {"steps": 4},
            "smoothgrad": {"n": 2},
            "occlusion": {"patch": 112, "stride": 112},
        },
    ),
    "cifar_vgg16": (
        "cifar_vgg16",
        32,
        64,
        {
            "integrated_gradients": {"steps": 4},
            "smoothgrad": {"n": 2},
            "occlusion": {"patch": 8, "stride": 8},
        },
    ),
}
CHUNK = 128  # images per pass for IG / SmoothGrad / Occlusion, ours and the libraries alike


def load(arch: str) -> torch.nn.Module:
    try:
        return zoo.load_pretrained(arch)
    except Exception:  # no weights on this machine: random weights time the same
        return zoo.build(arch)


def library_contenders(model, x, target, layer, params) -> dict[str, dict[str, Callable[[], object]]]:
    """For each method, the libraries that offer it, as zero-argument callables on the same batch."""
    from captum.attr import (
        InputXGradient,
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        LayerGradientXActivation,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from zennit.attribution import Gradient as ZGradient
    from zennit.canonizers import NamedMergeBatchNorm
    from zennit.composites import EpsilonPlusFlat, LayerMapComposite, layer_map_base
    from zennit.rules import AlphaBeta, Epsilon
    from zennit.types import Convolution, Linear

    names = {m: n for n, m in model.named_modules()}
    lay = layout(model, x)
    pairs = [([names[conv]], names[bn]) for conv, bn in lay.bn_of.items()]
    seed = F.one_hot(target, 1000 if x.shape[-1] > 100 else 10).to(x)
    h, w = x.shape[-2:]
    ig, sg, occ = params["integrated_gradients"], params["smoothgrad"], params["occlusion"]
    spread = float((x.flatten(1).max(1).values - x.flatten(1).min(1).values).mean()) * 0.15

    def zennit_lrp(composite):
        def run():
            with ZGradient(model=model, composite=composite) as attributor:
                return attributor(x, seed)

        return run

    def same_composite():
        rules = [(Convolution, AlphaBeta(alpha=1.0, beta=0.0)), (Linear, Epsilon(epsilon=0.01))]
        return LayerMapComposite(layer_map=layer_map_base() + rules, canonizers=[NamedMergeBatchNorm(pairs)])

    def grad_cam_lib():
        with GradCAM(model=model, target_layers=[layer]) as cam:
            return cam(
                input_tensor=x.clone().requires_grad_(True),
                targets=[ClassifierOutputTarget(int(t)) for t in target],
            )

    def captum_gradcam():
        cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, (h, w), "bilinear")

    return {
        "gradient": {
            "captum Saliency": lambda: Saliency(model).attribute(x, target=target, abs=False),
            "zennit Gradient": lambda: zennit_lrp(None)(),
        },
        "grad_x_input": {"captum InputXGradient": lambda: InputXGradient(model).attribute(x, target=target)},
        "integrated_gradients": {
            "captum IG": lambda: IntegratedGradients(model).attribute(
                x,
                baselines=0.0,
                target=target,
                n_steps=ig["steps"],
                method="riemann_middle",
                internal_batch_size=CHUNK,
            )
        },
        "smoothgrad": {
            "captum NoiseTunnel": lambda: NoiseTunnel(Saliency(model)).attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=sg["n"],
                nt_samples_batch_size=max(1, CHUNK // len(x)),
                stdevs=spread,
                target=target,
                abs=False,
            )
        },
        "gradient_t": {
            "captum LayerGradientXActivation(x1)": lambda: LayerGradientXActivation(
                model, layer, multiply_by_inputs=False
            ).attribute(x, target=target)
        },
        "gradcam": {"captum LayerGradCam": captum_gradcam, "pytorch-grad-cam GradCAM": grad_cam_lib},
        "lrp": {
            "zennit (same composite)": zennit_lrp(same_composite()),
            "zennit EpsilonPlusFlat": zennit_lrp(EpsilonPlusFlat(canonizers=[NamedMergeBatchNorm(pairs)])),
        },
        "lrp_t": {},
        "occlusion": {
            "captum Occlusion": lambda: Occlusion(model).attribute(
                x,
                sliding_window_shapes=(3, occ["patch"], occ["patch"]),
                strides=(3, occ["stride"], occ["stride"]),
                baselines=0.0,
                target=target,
                perturbations_per_eval=max(1, CHUNK // len(x)),
            )
        },
    }


def bench_model(
    key: str, repeats: int, device: str, only: set[str] | None = None
) -> tuple[str, list[list[str]]]:
    arch, size, batch, params = SETUPS[key]
    model = load(arch).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # inference-time explanation: no weight gradients, for everyone
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        target = model(x).argmax(1)
    layer = model.get_submodule(model.default_target_layer)
    lib = library_contenders(model, x, target, layer, {**{m: {} for m in ("ig",)}, **params})
    rows = []
    gradient_time = None
    for method, libs in lib.items():
        if only and method not in only and method != "gradient":  # Gradient is LRP's yardstick
            continue
        mp = dict(params.get(method, {}))
        if method in ("integrated_gradients", "smoothgrad", "occlusion"):
            mp["batch_size"] = CHUNK

        def ours(method=method, mp=mp):
            return explain(model, x, target, method, **mp)

        times = time_interleaved({"ours": ours, **libs}, repeats=repeats, device=device)
        if method == "gradient":
            gradient_time = times["ours"]
        lib_times = {k: v for k, v in times.items() if k != "ours"}
        fastest = min(lib_times.items(), key=lambda kv: kv[1]) if lib_times else None
        ratio = f"{times['ours'] / fastest[1]:.2f}" if fastest else "n/a (no library stops at a layer)"
        extra = (
            f" ; LRP / our Gradient = {times['ours'] / gradient_time:.2f}" if method.startswith("lrp") else ""
        )
        rows.append(
            [
                method,
                f"{times['ours'] * 1000:.0f}",
                ", ".join(f"{k} {v * 1000:.0f}" for k, v in lib_times.items()) or "-",
                ratio + extra,
            ]
        )
        print(
            f"{key:12s} {method:22s} ours {times['ours'] * 1000:8.0f} ms | {rows[-1][2]} | {rows[-1][3]}",
            flush=True,
        )
    title = f"{arch} at {size} px, batch {batch} ({', '.join(f'{m} {v}' for m, v in params.items())})"
    return title, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="lite0,cifar_vgg16")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--methods", default="", help="comma-separated subset (Gradient always runs)")
    args = ap.parse_args()
    sections = []
    for key in args.models.split(","):
        only = set(filter(None, args.methods.split(",")))
        title, rows = bench_model(key, args.repeats, args.device, only or None)
        header = ["method", "ours (ms)", "libraries (ms)", "ours / fastest library"]
        sections.append(f"### {title}\n\n{markdown_table(header, rows)}\n")
        text = (  # written after every model, so a long run keeps what it measured
            "# Explanation speed (median of interleaved runs after warm-up; lower is better)\n\n"
            f"Machine: {machine_description(args.device)}\n\n"
            f"Command: `python benchmarks/explain_speed.py --repeats {args.repeats} --device {args.device}"
            f" --models {args.models}{' --methods ' + args.methods if args.methods else ''}`\n\n"
            + "\n".join(sections)
        )
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
