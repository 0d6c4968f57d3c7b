"""Does the Active preset hold beyond the model it was tuned on? Train shapes CNNs of other seeds, fool
each with the preset, and measure on fresh images. Not a test (tests/fool/test_active_seeds.py is the
CI-sized check).

For each seed: `train_shapes_model({"seed": s})` (the fixture's settings, another seed), `run_fooling`
with the preset, then `evaluate` twice on images no run saw: the FSR (with the run's interpreter) on
two-object circle+triangle images (Heo2019's D_fool), and top-1 / per-class accuracy of c1 and c2 on
single-object images. The issue's bar: FSR >= 80% and per-class accuracy down <= 3 points.
Writes benchmarks/results/active_seeds.md.

    OMP_NUM_THREADS=1 FOOLING_LAB_DATA=/tmp/x python benchmarks/active_seeds.py [--seeds 7 11]
        [--preset shapes-active-gradcam] [--pair-images 512] [--single-images 1000] [--set KEY=JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.fool.presets import resolve_config  # noqa: E402
from backend.fool.trainer import run_fooling  # noqa: E402
from backend.metrics.evaluate import evaluate  # noqa: E402
from backend.models.registry import Registry  # noqa: E402
from backend.models.train_shapes import train_shapes_model  # noqa: E402
from benchmarks.common import machine_description, markdown_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "active_seeds.md"
FSR_FLOOR, PER_CLASS_DROP = 0.8, 0.03
# fresh images: other seeds than the fooling set (1), its held-out split and the trainer's (seed + 1_000_003)
PAIR_SEED, SINGLE_SEED = 99, 98


def base_model(seed: int, registry: Registry) -> str:
    """The shapes CNN of this seed (trained once, then found again by its name)."""
    name = f"shapes CNN seed {seed}"
    for card in registry.list():
        if card.name == name and card.kind == "trained":
            return card.id
    return train_shapes_model({"seed": seed, "name": name}).id


def print_validations(p) -> None:
    """--trace: the run's periodic validations as they come (what keep_best chooses among)."""
    if "val_fsr" in p.metrics or p.extra.get("done"):
        drop = p.metrics.get("val_accuracy_drop")
        tail = "" if drop is None else f" | c1/c2 accuracy drop {100 * drop:.1f}"
        print(f"  {p.message}{tail}", flush=True)


def measure(
    base: str, preset: str, pair_images: int, single_images: int, overrides: dict, trace: bool = False
) -> dict:
    """Fool `base` with the preset, then the FSR on two-object images and accuracy on single ones."""
    cfg = resolve_config({"preset": preset, "model": base, **overrides})
    started = time.perf_counter()
    fooled = run_fooling(cfg, progress=print_validations if trace else None)
    seconds = time.perf_counter() - started
    c1, c2 = (fooled.config["attack_params"][k] for k in ("c1", "c2"))
    method = fooled.config["interpreter"]
    pairs = {"kind": "shapes", "n": pair_images, "seed": PAIR_SEED, "pair": [c1, c2], "pair_fraction": 1.0}
    singles = {"kind": "shapes", "n": single_images, "seed": SINGLE_SEED}
    spec = {"baseline": base, "fooled": fooled.id, "interpreters": [method]}
    on_pairs = evaluate({**spec, "dataset": pairs, "images": pair_images})
    on_singles = evaluate({**spec, "dataset": singles, "images": single_images})
    cell = on_pairs["fsr"][method][f"active/{method}"]
    acc = on_singles["accuracy"]
    per = acc[fooled.id]["per_class"]
    return {
        "fooled": fooled.id,
        "kept_step": fooled.metrics.get("kept_step"),
        "steps": fooled.config.get("steps"),
        "seconds": seconds,
        "fsr": cell["fooled"],
        "fsr_baseline": cell["baseline"],
        "fsr_images": cell["images"],
        "agreement_pairs": on_pairs["accuracy"][fooled.id]["agreement"],
        "top1": (acc["baseline"]["top1"], acc[fooled.id]["top1"]),
        "per_class": {c: (per["baseline"][c], per["fooled"][c]) for c in per["fooled"]},
        "single_images": on_singles["images"],
    }


def passes(r: dict) -> bool:
    return r["fsr"] >= FSR_FLOOR and all(b - a <= PER_CLASS_DROP for b, a in r["per_class"].values())


def write(results: dict[int, dict], args: argparse.Namespace, classes: list[str]) -> None:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    rows = []
    for seed, r in results.items():
        per = "; ".join(
            f"{classes[c]} {pct(b)} -> {pct(a)} ({100 * (a - b):+.1f})"
            for c, (b, a) in r["per_class"].items()
        )
        rows.append(
            [
                str(seed),
                f"{pct(r['fsr'])} ({pct(r['fsr_baseline'])})",
                pct(r["agreement_pairs"]),
                f"{pct(r['top1'][0])} -> {pct(r['top1'][1])}",
                per,
                f"{r['kept_step']} / {r['steps']}",
                f"{r['seconds']:.0f}",
                "yes" if passes(r) else "**no**",
            ]
        )
    header = [
        "model seed",
        f"FSR % on {args.pair_images} two-object images (baseline)",
        "agreement % on them",
        f"top-1 % on {args.single_images} single images",
        "per-class accuracy % (change, points)",
        "kept step / steps",
        "fooling s",
        "FSR >= 80, per-class drop <= 3",
    ]
    command = "python benchmarks/active_seeds.py " + " ".join(sys.argv[1:])
    text = [
        f"# Active fooling ({args.preset}) on shapes CNNs of other seeds",
        "",
        f"Machine: {machine_description()}. Command: `{command}`.",
        "",
        "Each base model: `train_shapes_model({'seed': s})` (the test fixture's settings, seed 0 there). "
        f"FSR with the run's interpreter on {args.pair_images} fresh circle+triangle images (shapes seed "
        f"{PAIR_SEED}), accuracy on {args.single_images} fresh single-object images (seed {SINGLE_SEED}, "
        "about a fifth per class); neither set chose the kept weights.",
        "",
        markdown_table(header, rows),
        "",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(text))
    print("\n".join(text))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    ap.add_argument("--preset", default="shapes-active-gradcam")
    ap.add_argument("--pair-images", type=int, default=512)
    ap.add_argument("--single-images", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], help="override a preset setting: KEY=JSON")
    ap.add_argument("--trace", action="store_true", help="print every periodic validation of the runs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    registry = Registry()
    results, classes = {}, []
    for seed in args.seeds:
        base = base_model(seed, registry)
        classes = list(registry.card(base).classes)
        results[seed] = measure(
            base, args.preset, args.pair_images, args.single_images, overrides, args.trace
        )
        print(seed, results[seed], flush=True)
        write(results, args, classes)  # after each seed: a long run that is stopped keeps what it measured
    return 0 if all(passes(r) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
