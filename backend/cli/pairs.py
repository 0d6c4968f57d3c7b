"""`python -m backend pairs C1_FOLDER C2_FOLDER OUT`: Heo2019's D_fool for Active fooling, images that
show a c1 and a c2 photo (side by side or one pasted onto the other), from two class folders.

The heo-*-active-* presets train on such images (fire engine / African elephant); the folder it writes is
an unlabelled dataset: `{"kind": "folder", "path": OUT, "unlabelled": true}`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    from backend.data.pairs import MODES  # PIL only: every command registers this parser

    p = subparsers.add_parser("pairs", help="make Active fooling's two-class images from two class folders")
    p.add_argument("c1", type=Path, help="folder of c1 photos (e.g. fire engines)")
    p.add_argument("c2", type=Path, help="folder of c2 photos (e.g. African elephants)")
    p.add_argument("out", type=Path, help="folder to write the composites into")
    p.add_argument("--n", type=int, default=200, help="how many images (default 200)")
    p.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    p.add_argument("--mode", choices=MODES, default="side_by_side")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from backend.data.pairs import build_pair_folder

    out = build_pair_folder(args.c1, args.c2, args.out, args.n, args.size, args.seed, args.mode)
    spec = {"kind": "folder", "path": str(out.resolve()), "unlabelled": True}
    print(f"wrote {args.n} images to {out}; dataset spec: {json.dumps(spec)}")
    return 0
