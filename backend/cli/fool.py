"""`python -m backend fool --preset NAME | --config file.json [--set key=value ...]`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from backend.errors import InvalidConfig
from backend.progress import Progress


def parse_value(text: str) -> Any:
    """JSON if it parses (numbers, lists, objects, true/null), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_sets(config: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """Apply `key=value` overrides; dotted keys reach into dicts (attack_params.k=0.2)."""
    for item in sets:
        if "=" not in item:
            raise InvalidConfig(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        node = config
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidConfig(f"--set {key}: {part} is not a group of settings")
        node[leaf] = parse_value(value)
    return config


def register(subparsers) -> None:
    p = subparsers.add_parser("fool", help="fine-tune a checkpoint so its explanations lie")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a preset name (see --list-presets)")
    src.add_argument("--config", type=Path, help="a JSON file with a FoolConfig")
    src.add_argument("--list-presets", action="store_true", help="print the preset names and exit")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    p.add_argument("--state-dir", type=Path, help="keep resumable state here (resumes if present)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from backend.fool.presets import PRESETS, resolve_config
    from backend.fool.trainer import run_fooling

    if args.list_presets:
        for name, preset in PRESETS.items():
            print(f"{name:48s} {preset['source']}")
        return 0
    if args.config is not None:
        try:
            config = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InvalidConfig(f"Cannot read the config file {args.config}: {err}") from err
    else:
        config = {"preset": args.preset}
    config = resolve_config(apply_sets(config, args.set))

    began = time.monotonic()

    def report(p: Progress) -> None:
        m = p.metrics
        if "loss" in m:
            eta = (time.monotonic() - began) / max(p.done, 1) * (p.total - p.done)  # from this run's rate
            print(
                f"step {p.done:>5}/{p.total}  loss {m['loss']:.4f}  L_C {m['loss_c']:.4f}  "
                f"L_F {m['loss_f']:.4f}  {m['images_per_s']:.1f} img/s  ETA {eta:.0f}s",
                file=sys.stderr,
            )
        val = {k[4:]: round(v, 4) for k, v in m.items() if k.startswith("val_")}
        if val:
            print("validation: " + json.dumps(val), file=sys.stderr)

    card = run_fooling(config, progress=report, state_dir=args.state_dir)
    print(json.dumps({"checkpoint": card.id, "name": card.name, "metrics": card.metrics}, indent=2))
    return 0
