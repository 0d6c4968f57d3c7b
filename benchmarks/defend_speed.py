"""Benchmark (not a test): what a defence costs per training step, and ROAD against ROAR.

- One training step (forward, backward, update) of each defence's loss against a plain cross-entropy
  step on the same model, batch and optimiser, as ratios: PGD-l2 with k iterations (k + 1 forwards and
  backwards), Jacobian regularisation (a double backward through the explanation engine), ATEX,
  distillation, alignment. Timed interleaved (benchmarks/common.py), so load hits all alike.
- ROAD (no retraining) against ROAR (one retrain per point) for one ranking at the same fractions.

    python benchmarks/defend_speed.py [--device cpu] [--batch 32] [--k 5] [--repeats 5] [--roar-train 1024]

Writes benchmarks/results/defend_speed.md.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.data.shapes import SHAPE_CLASSES, make_shapes  # noqa: E402
from backend.defend.defences import DEFENCES  # noqa: E402
from backend.defend.registry import DefenceContext  # noqa: E402
from backend.metrics.faithfulness import random_scores, road, roar  # noqa: E402
from backend.models import zoo  # noqa: E402
from benchmarks.common import machine_description, markdown_table, time_interleaved  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "defend_speed.md"
WEIGHTS = Path(__file__).resolve().parent.parent / "tests" / "assets" / "shapes_cnn_seed0.safetensors"


def shapes_model(device: str):
    from safetensors.torch import load_file

    model = zoo.build("shapes_cnn", len(SHAPE_CLASSES))
    model.load_state_dict(load_file(WEIGHTS))
    return model.to(device).eval(), zoo.spec("shapes_cnn").preprocessing


def step_times(device: str, batch: int, k: int, repeats: int) -> list[list[str]]:
    model, pre = shapes_model(device)
    parent = copy.deepcopy(model).requires_grad_(False)
    x01, y, _ = make_shapes(batch, 64, 3)
    x, y = pre.normalize(x01).to(device), y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)

    def plain():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    settings = {
        "pgd_l2": {"iterations": k},
        "pgd_linf": {"iterations": k},
        "alignment": {"reference": "timing", "lam": 1.0},
    }
    contenders = {"plain": plain}
    for name, defence in DEFENCES.items():
        params = {**{p: spec.default for p, spec in defence.params.items()}, **settings.get(name, {})}
        ctx = DefenceContext(pre, parent, params, reference=parent, step=1, total=1)

        def step(defence=defence, ctx=ctx):
            opt.zero_grad(set_to_none=True)
            defence.loss(model, x, y, ctx).loss.backward()
            opt.step()

        contenders[name] = step
    times = time_interleaved(contenders, repeats=repeats, device=device)
    rows = []
    for name, t in times.items():
        what = f"{name} (k = {k})" if name.startswith("pgd") else name
        rows.append([what, f"{1000 * t:.1f}", f"{t / times['plain']:.2f}x"])
    return rows


def road_vs_roar(device: str, images: int, n_train: int, epochs: int) -> list[list[str]]:
    model, pre = shapes_model(device)
    x01, y, _ = make_shapes(images, 64, 99)
    xtr, ytr, _ = make_shapes(n_train, 64, 5)
    x01, y, xtr, ytr = x01.to(device), y.to(device), xtr.to(device), ytr.to(device)
    fractions = (0.2, 0.4, 0.6, 0.8)
    t0 = time.perf_counter()
    road(model, x01, y, pre.normalize, {"random": random_scores((images, 64, 64), 0)}, fractions, ("morf",))
    t_road = time.perf_counter() - t0

    def retrain(xn, yn):
        torch.manual_seed(0)
        net = zoo.build("shapes_cnn", len(SHAPE_CLASSES)).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=4e-3)
        for _ in range(epochs):
            for i in range(0, len(xn), 64):
                loss = F.cross_entropy(net(xn[i : i + 64]), yn[i : i + 64])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return net.eval()

    t0 = time.perf_counter()
    roar(
        retrain,
        (xtr, ytr),
        (x01, y),
        pre.normalize,
        {"random": random_scores((n_train, 64, 64), 1)},
        {"random": random_scores((images, 64, 64), 2)},
        fractions,
    )
    t_roar = time.perf_counter() - t0
    return [
        [f"ROAD, {images} images, 4 fractions, one ranking", f"{t_road:.1f}", "1x"],
        [
            f"ROAR, {n_train} training images x {epochs} epochs, 4 fractions + clean",
            f"{t_roar:.1f}",
            f"{t_roar / t_road:.0f}x",
        ],
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--k", type=int, default=5, help="PGD iterations per training step")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--images", type=int, default=128, help="ROAD / ROAR test images")
    ap.add_argument("--roar-train", type=int, default=1024)
    ap.add_argument("--roar-epochs", type=int, default=3)
    args = ap.parse_args()
    steps = step_times(args.device, args.batch, args.k, args.repeats)
    removal = road_vs_roar(args.device, args.images, args.roar_train, args.roar_epochs)
    text = "\n".join(
        [
            "# Defence cost: a defence's training step vs a plain step; ROAD vs ROAR",
            "",
            f"Shapes CNN (seed 0), batch {args.batch}, Adam; median of {args.repeats} interleaved runs. "
            + machine_description(args.device)
            + ".",
            "",
            markdown_table(["training step", "ms", "vs plain"], steps),
            "",
            markdown_table(["faithfulness", "seconds", "vs ROAD"], removal),
            "",
        ]
    )
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
