"""The defence tables for BENCHMARKS.md from `python -m backend defend evaluate --json` results.

    python -m backend defend evaluate --base ID --defended ID ... --json > eval.json
    python -m backend defend evaluate --base ID --sections roar --json > roar.json
    python benchmarks/defend_tables.py eval.json [roar.json] [--note "machine, load"]

Writes benchmarks/results/defend_tables.md: does the defence stop the fooling (FSR, steps to reach,
top-1 cost), accuracy / robustness / gradient norm / alignment, input attacks, the alignment metric
against epsilon, ROAD (MoRF and LeRF) and ROAR tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import markdown_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "defend_tables.md"


def pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def names(result: dict) -> dict[str, str]:
    return {m["id"]: (m["defence"] or "base") for m in result["models"]}


def tables(result: dict) -> list[str]:
    n = names(result)
    out: list[str] = []
    if "fooling" in result:
        f = result["fooling"]
        rows = [
            [
                n[c],
                pct(r["fsr"]),
                str(r["steps_to_reach"] or "-"),
                pct(r["top1_before"]),
                pct(r["top1_after"]),
                f"{100 * r['top1_cost']:+.1f}".replace("+-", "-"),
            ]
            for c, r in f["rows"].items()
        ]
        out += [
            f"## Does the defence stop the fooling? `{f['preset']}`, {f['steps']} steps",
            "",
            markdown_table(
                ["model", "FSR %", "steps to FSR 50%", "top-1 before %", "top-1 after %", "cost (points)"],
                rows,
            ),
            "",
        ]
    if "accuracy" in result:
        sims = result.get("similarity", {})
        methods = sorted({m for per in sims.values() for m in per})
        rows = [
            [
                n[c],
                pct(r["clean"]),
                pct(r["agreement"]),
                pct(r["robust"]),
                f"{r['grad_norm']:.2f}",
                f"{r['alignment']:.2f}",
                *(
                    f"{sims.get(c, {}).get(m, {}).get('spearman', float('nan')):.2f}" if c in sims else "1"
                    for m in methods
                ),
            ]
            for c, r in result["accuracy"].items()
        ]
        a = result["config"]["attack"]
        out += [
            f"## Accuracy, under PGD-{a['norm']} {a['epsilon'] * 255:.0f}/255, gradient norm, alignment",
            "",
            markdown_table(
                [
                    "model",
                    "clean %",
                    "agreement %",
                    "under PGD %",
                    "gradient norm",
                    "alignment",
                    *(f"{m} Spearman vs base" for m in methods),
                ],
                rows,
            ),
            "",
        ]
    if "input_attacks" in result:
        attacks = list(next(iter(result["input_attacks"].values())))
        rows = [
            [n[c], *(f"{per[a]['topk_intersection']:.2f} / {per[a]['spearman']:.2f}" for a in attacks)]
            for c, per in result["input_attacks"].items()
        ]
        out += [
            "## Input attacks on explanations (top-k intersection / Spearman with the original map)",
            "",
            markdown_table(["model", *attacks], rows),
            "",
        ]
    if "alignment" in result:
        rows = [
            [p["norm"], f"{p['epsilon']:.4g}", f"{p['alignment']:.3f}"] for p in result["alignment"]["points"]
        ]
        out += [
            "## Alignment |<x, g>| / ||g|| against epsilon",
            "",
            markdown_table(["norm", "epsilon", "alignment"], rows),
            "",
        ]
    for key, title in (
        ("road", "ROAD (noisy linear imputation, no retraining)"),
        ("roar", "ROAR (mean fill, retrained)"),
    ):
        if key not in result:
            continue
        rows = []
        for c, r in result[key].items():
            for order in ("morf", "lerf"):
                for method, accs in r.get(order, {}).items():
                    rows.append([n[c], order, method, pct(r["clean"]), *(pct(a) for a in accs)])
        fr = next(iter(result[key].values()))["fractions"]
        out += [
            f"## {title}: accuracy % after removing the share of pixels",
            "",
            markdown_table(["model", "order", "ranking", "0%", *(f"{int(100 * f)}%" for f in fr)], rows),
            "",
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    lines = ["# Defences against fooling, and faithfulness (shapes CNN)", ""]
    if args.note:
        lines += [args.note, ""]
    for path in args.results:
        lines += tables(json.loads(path.read_text()))
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
