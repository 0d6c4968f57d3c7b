"""`python -m backend train [--seed N] [--epochs N] ...`: train the shapes CNN into the registry."""

from __future__ import annotations

import argparse

from backend.progress import print_progress


def register(subparsers) -> None:
    from backend.models.train_config import DEFAULTS  # no torch: every command registers this parser

    p = subparsers.add_parser("train", help="train the small CNN on the synthetic shapes (CPU, ~1 minute)")
    for key, value in DEFAULTS.items():
        kind = str if value is None else type(value)
        p.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None, help=f"default {value}")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from backend.models.train_config import DEFAULTS
    from backend.models.train_shapes import train_shapes_model

    config = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}

    card = train_shapes_model(config, progress=print_progress)
    print(f"saved checkpoint {card.id}: val accuracy {card.metrics['val_accuracy']:.3f}")
    return 0
