"""`python -m backend models list|archs|upload`: the checkpoint registry from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list checkpoints, architectures, or upload weights")
    sub = p.add_subparsers(dest="models_command", required=True)
    sub.add_parser("list", help="all checkpoints in the registry").set_defaults(func=list_checkpoints)
    sub.add_parser("archs", help="the known architectures").set_defaults(func=list_archs)
    up = sub.add_parser("upload", help="register a .safetensors / .pt state dict")
    up.add_argument("path", type=Path)
    up.add_argument("--arch", required=True)
    up.add_argument("--name", required=True)
    up.set_defaults(func=upload)


def list_checkpoints(args: argparse.Namespace) -> int:
    from backend.models.registry import Registry

    registry = Registry()
    registry.ensure_builtin()
    print(f"{'id':40s} {'architecture':20s} {'kind':10s} {'classes':>7s}  name / metrics")
    for card in registry.list():
        metrics = ", ".join(f"{k}={v:.3g}" for k, v in card.metrics.items() if isinstance(v, int | float))
        print(f"{card.id:40s} {card.architecture:20s} {card.kind:10s} {card.num_classes:7d}  {card.name}"
              + (f"  [{metrics}]" if metrics else ""))  # fmt: skip
    return 0


def list_archs(args: argparse.Namespace) -> int:
    from backend.models.zoo import ARCHITECTURES

    for spec in ARCHITECTURES.values():
        print(f"{spec.name:20s} {spec.num_classes:5d} classes  layer {spec.target_layer:22s} {spec.label}")
    return 0


def upload(args: argparse.Namespace) -> int:
    from backend.models.registry import Registry

    card = Registry().upload(args.path, architecture=args.arch, name=args.name)
    print(f"registered {card.id} ({card.architecture}, sha256 {card.sha256[:12]})")
    return 0
