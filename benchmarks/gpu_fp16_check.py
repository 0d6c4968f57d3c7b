"""Check mixed precision on a GPU: every differentiable method's create_graph map under fp16 autocast
against float32 (lowest per-image PCC) and finite second-order gradients, on the shapes CNN.

On CUDA it runs fp16 and asserts that every method agrees (PCC >= REQUIRED_PCC) and that fp16 was
really used; with `--device cpu` it runs bf16 and asserts that exactly the BF16_REFUSED methods fall
short (what tests/fool/test_precision.py checks in CI). Prints the comparison, writes `--out` (JSON and
markdown). Imports only torch, torchvision, safetensors, numpy, PIL and backend modules that need
nothing else (the GPU machine has no captum / zennit / streamlit); tests/test_gpu_scripts.py checks it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.data.shapes import SHAPE_CLASSES, make_shapes  # noqa: E402
from backend.explain import METHODS  # noqa: E402
from backend.fool.precision import (  # noqa: E402
    BF16_REFUSED,
    REQUIRED_PCC,
    Precision,
    map_agreement,
)
from backend.models import zoo  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent / "tests" / "assets" / "shapes_cnn_seed0.safetensors"


def main() -> None:
    from safetensors.torch import load_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="8 images")
    ap.add_argument("--out", type=Path, default=None, help="PATH: writes PATH.json and PATH.md")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    precision = Precision(device.type, dtype)
    model = zoo.build("shapes_cnn", len(SHAPE_CLASSES))
    model.load_state_dict(load_file(WEIGHTS))
    model = model.to(device).eval()
    x, y, _ = make_shapes(8 if args.quick else args.images, 64, 0)
    x, y = x.to(device), y.to(device)
    with precision.autocast():
        assert model(x).dtype == dtype, "autocast did not run the model in reduced precision"
    rows = []
    for name, spec in METHODS.items():
        if not spec.differentiable or "image" not in spec.inputs:
            continue
        worst, finite = map_agreement(model, x, y, name, precision)
        rows.append({"method": name, "pcc_min": worst, "grads_finite": finite})
        print(f"{name:22s} {precision.name} vs float32: map PCC min {worst:.3f}, grads finite {finite}")
    failures = [r["method"] for r in rows if not r["grads_finite"]]
    if device.type == "cuda":
        failures += [r["method"] for r in rows if r["pcc_min"] < REQUIRED_PCC]
    else:
        failures += [
            r["method"] for r in rows if (r["pcc_min"] >= REQUIRED_PCC) == (r["method"] in BF16_REFUSED)
        ]
    result = {"device": str(device), "precision": precision.name, "rows": rows, "failures": failures}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
        lines = [
            f"## Mixed precision maps ({precision.name} on {device})",
            "",
            "| method | PCC min | finite |",
            "|---|---|---|",
        ]
        lines += [f"| {r['method']} | {r['pcc_min']:.3f} | {r['grads_finite']} |" for r in rows]
        args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    assert not failures, f"{precision.name} breaks: {failures}"
    print(f"OK: {precision.name} maps agree where expected (threshold {REQUIRED_PCC})")


if __name__ == "__main__":
    main()
