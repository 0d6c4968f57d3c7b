"""Time of one fooling step vs one plain training step (forward + backward + update), per interpreter.

Same model, same batch, same optimiser; the fooling step is the trainer's own objective
(`backend.fool.objective.fooling_loss`, Location attack, so no extra pass of the original model).
Prints the ratios and writes benchmarks/results/fool_speed.md. Not a test.

    python benchmarks/fool_speed.py [--arch shapes_cnn] [--size 64] [--batch 32] [--methods ...]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.fool.losses import FOOLING_ATTACKS  # noqa: E402
from backend.fool.objective import Interpreter, fooling_loss  # noqa: E402
from backend.models import zoo  # noqa: E402

TARGETS = {"gradient": 3.5, "gradcam": 3.5, "lrp_t": 5.0, "lrp": 5.0}
RESULTS = Path(__file__).resolve().parent / "results" / "fool_speed.md"


def _paired(plain, fool, repeats: int, sync) -> tuple[float, float, float]:
    """Alternate plain and fooling steps so both see the same machine load (the CPU is shared);
    returns the median plain time, the median fooling time and the median of the per-pair ratios."""
    for _ in range(2):
        plain()
        fool()
    sync()
    t_plain, t_fool = [], []
    for _ in range(repeats):
        for fn, out in ((plain, t_plain), (fool, t_fool)):
            start = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - start)
    ratios = [f / p for f, p in zip(t_fool, t_plain, strict=True)]
    return statistics.median(t_plain), statistics.median(t_fool), statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="shapes_cnn")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["gradient", "gradcam", "lrp_t", "lrp", "lrp:zbox_zplus", "grad_x_input"],
        help="method names; `lrp:COMPOSITE` picks an LRP composite",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = zoo.build(args.arch, num_classes=None).to(device).eval()
    original = copy.deepcopy(model).requires_grad_(False)
    num_classes = model(torch.zeros(1, 3, args.size, args.size, device=device)).shape[1]
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, num_classes, (args.batch,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-9)

    def plain() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    attack = FOOLING_ATTACKS["location"]
    attack_cfg = attack.setup({}, args.size, num_classes)
    rows = []
    for method in args.methods:
        name, _, composite = method.partition(":")
        interp = Interpreter(name, {"composite": composite} if composite else {})

        def fool(interp=interp) -> None:
            opt.zero_grad(set_to_none=True)
            res = fooling_loss(
                model,
                original,
                x,
                y,
                attack=attack,
                attack_cfg=attack_cfg,
                interpreter=interp,
                lam=1.0,
                classification="labels",
            )
            res.loss.backward()
            opt.step()

        base, t, ratio = _paired(plain, fool, args.repeats, sync)
        rows.append((method, base, t, ratio, TARGETS.get(name)))
        print(f"{method:22s} {1000 * t:9.1f} ms vs {1000 * base:7.1f} ms plain: {ratio:5.2f}x", flush=True)
    machine = (
        f"{torch.cuda.get_device_name(device)}"
        if device.type == "cuda"
        else f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {torch.get_num_threads()}"
    )
    lines = [
        "# Fooling step vs plain training step",
        "",
        f"Machine: {machine}; torch {torch.__version__}. Model `{args.arch}`, batch {args.batch}, "
        f"{args.size}x{args.size}; plain and fooling steps alternate {args.repeats} times after 2 warm-ups "
        "(the machine is shared), ratio = median of the per-pair ratios. Command: "
        f"`python benchmarks/fool_speed.py --arch {args.arch} --size {args.size} --batch {args.batch}`.",
        "",
        "| interpreter in L_F | plain step (ms) | fooling step (ms) | ratio | target |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for method, base, t, ratio, target in rows:
        goal = f"<= {target}x" if target else "-"
        lines.append(f"| {method} | {1000 * base:.1f} | {1000 * t:.1f} | {ratio:.2f}x | {goal} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    section = "\n".join(lines) + "\n"
    RESULTS.write_text(section)
    print(section)


if __name__ == "__main__":
    main()
