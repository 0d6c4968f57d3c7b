"""`python -m backend defend train|evaluate|presets`: defences and their measurements."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from backend.errors import InvalidConfig
from backend.progress import Progress, print_progress


def register(subparsers) -> None:
    p = subparsers.add_parser("defend", help="train defences and measure them against fooling")
    sub = p.add_subparsers(dest="defend_command", required=True)
    t = sub.add_parser("train", help="fine-tune a checkpoint with a defence (a preset or --defence)")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a defence preset (see `defend presets`)")
    src.add_argument("--defence", help="a defence name, with its default settings")
    src.add_argument("--config", type=Path, help="a JSON file with a DefendConfig")
    t.add_argument("--model", help="checkpoint id to defend (default: the newest shapes CNN)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    t.add_argument("--state-dir", type=Path, help="keep resumable state here (resumes if present)")
    t.set_defaults(func=train)
    e = sub.add_parser("evaluate", help="defended models vs their base: fooling, attacks, faithfulness")
    e.add_argument("--base", required=True, help="checkpoint id of the undefended model")
    e.add_argument("--defended", nargs="+", default=[], help="checkpoint ids of defended models")
    e.add_argument("--sections", nargs="+", help="which measurements (default: all cheap ones)")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    e.add_argument("--json", action="store_true", help="print the whole result as JSON")
    e.set_defaults(func=evaluate)
    s = sub.add_parser("presets", help="list the defences with their settings, and the presets")
    s.set_defaults(func=presets)


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from backend.cli.fool import apply_sets

    if args.config is not None:
        try:
            config = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InvalidConfig(f"Cannot read the config file {args.config}: {err}") from err
    elif args.preset:
        config = {"preset": args.preset}
    else:
        config = {"defence": args.defence}
    if args.model:
        config["model"] = args.model
    return apply_sets(config, args.set)


def train(args: argparse.Namespace) -> int:
    from backend.defend.presets import resolve_config
    from backend.defend.trainer import run_defence
    from backend.fool.presets import _newest_checkpoint

    config = resolve_config(_config(args))
    config.setdefault("model", None) or config.update(model=_newest_checkpoint("shapes_cnn"))

    began = time.monotonic()

    def report(p: Progress) -> None:
        m = p.metrics
        if "loss" in m and (p.done % 10 == 0 or p.done == p.total):
            terms = "  ".join(f"{k} {v:.4f}" for k, v in m.items() if not k.startswith("val_"))
            eta = (time.monotonic() - began) / max(p.done, 1) * (p.total - p.done)  # from this run's rate
            print(f"step {p.done:>5}/{p.total}  {terms}  ETA {eta:.0f}s", file=sys.stderr)
        val = {k[4:]: round(v, 4) for k, v in m.items() if k.startswith("val_")}
        if val:
            print("validation: " + json.dumps(val), file=sys.stderr)

    card = run_defence(config, progress=report, state_dir=args.state_dir)
    print(json.dumps({"checkpoint": card.id, "name": card.name, "metrics": card.metrics}, indent=2))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from backend.cli.fool import apply_sets
    from backend.defend.evaluate import evaluate_defences, format_result

    config: dict[str, Any] = {"base": args.base, "defended": args.defended}
    if args.sections:
        config["sections"] = args.sections
    config = apply_sets(config, args.set)
    result = evaluate_defences(config, progress=print_progress)
    print(json.dumps(result) if args.json else format_result(result))
    return 0


def presets(args: argparse.Namespace) -> int:
    from backend.defend.defences import DEFENCES
    from backend.defend.params import describe
    from backend.defend.presets import PRESETS

    for name, d in DEFENCES.items():
        print(f"{name:14s} {d.label} ({d.source})")
        for pname, p in describe(d.params).items():
            print(f"    {pname:16s} default {p['default']!r:10}  {p['help']}")
    print()
    for name, preset in PRESETS.items():
        print(f"{name:32s} {preset['source']}")
    return 0
