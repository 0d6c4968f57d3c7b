"""Command line over the same services the pages use: `python -m backend <command> --help`.

Each command lives in `backend/cli/<name>.py` and exposes `register(subparsers)`; this file only
discovers them, so adding a command never touches it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from backend import cli
from backend.errors import FoolingLabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description="Fooling Lab command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"backend.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FoolingLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
