"""`python -m backend evaluate --baseline ID --fooled ID [ID ...] [--dataset JSON] [--interpreters ...]`."""

from __future__ import annotations

import argparse
import json
import sys

from backend.errors import InvalidConfig


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="FSR table, transfer matrix and accuracy of fooled models")
    p.add_argument("--baseline", required=True, help="checkpoint id of the original model")
    p.add_argument("--fooled", required=True, nargs="+", help="checkpoint id(s) of fooled models")
    p.add_argument(
        "--dataset", help='a dataset spec as JSON, e.g. \'{"kind": "shapes", "n": 128, "seed": 5}\''
    )
    p.add_argument("--interpreters", nargs="+", help="explanation methods to measure the FSR with")
    p.add_argument("--images", type=int, default=128, help="at most this many images")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON instead of tables")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from backend.metrics.evaluate import evaluate, format_report

    config = {"baseline": args.baseline, "fooled": args.fooled, "images": args.images}
    if args.dataset:
        try:
            config["dataset"] = json.loads(args.dataset)
        except json.JSONDecodeError as err:
            raise InvalidConfig(f"--dataset must be JSON: {err}") from err
    if args.interpreters:
        config["interpreters"] = args.interpreters
    report = evaluate(config, progress=lambda f, msg: print(f"[{100 * f:5.1f}%] {msg}", file=sys.stderr))
    print(json.dumps(report) if args.json else format_report(report))
    return 0
