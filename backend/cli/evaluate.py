"""`python -m backend evaluate --baseline ID [--fooled ID ...] [--dataset JSON | PATH] [--interpreters ...]`.

Without `--fooled` it measures the baseline alone on `--dataset`: top-1 / top-5 and how the dataset's
class folders were matched to the model's classes. `--dataset` takes a JSON spec or a folder / zip path.
"""

from __future__ import annotations

import argparse
import json

from backend.errors import InvalidConfig
from backend.progress import print_progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="FSR table, transfer matrix and accuracy of fooled models (or a baseline's accuracy)"
    )
    p.add_argument("--baseline", required=True, help="checkpoint id of the original model")
    p.add_argument(
        "--fooled", nargs="+", help="checkpoint id(s) of fooled models; none: the baseline's accuracy only"
    )
    p.add_argument(
        "--dataset",
        help="a folder of class folders (or images), a .zip of one, or a dataset spec as JSON, e.g. "
        '\'{"kind": "shapes", "n": 128, "seed": 5}\'',
    )
    p.add_argument(
        "--class-map",
        help='JSON {"folder": "class name or index"}: overrides matching a folder\'s name to the classes',
    )
    p.add_argument("--interpreters", nargs="+", help="explanation methods to measure the FSR with")
    p.add_argument("--images", type=int, default=128, help="at most this many images")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON instead of tables")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from backend.metrics.evaluate import evaluate, format_report

    config = {"baseline": args.baseline, "fooled": args.fooled, "images": args.images}
    if args.dataset:
        config["dataset"] = dataset_arg(args.dataset)
    if args.class_map:
        if config.get("dataset", {}).get("kind") != "folder":
            raise InvalidConfig("--class-map needs --dataset naming a folder or zip of class folders.")
        try:
            config["dataset"]["class_map"] = json.loads(args.class_map)
        except json.JSONDecodeError as err:
            raise InvalidConfig(f"--class-map must be JSON: {err}") from err
    if args.interpreters:
        config["interpreters"] = args.interpreters
    report = evaluate(config, progress=print_progress)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def dataset_arg(value: str) -> dict:
    """A dataset spec from the command line: JSON, a folder path, or a zip (extracted safely)."""
    from pathlib import Path

    path = Path(value).expanduser()
    if path.is_dir():
        return {"kind": "folder", "path": str(path.resolve())}
    if path.is_file() and path.suffix.lower() == ".zip":
        from backend.storage import store_dataset_zip

        return {"kind": "folder", "path": str(store_dataset_zip(path.read_bytes()))}
    try:
        spec = json.loads(value)
    except json.JSONDecodeError as err:
        raise InvalidConfig(
            f"--dataset must be a folder, a .zip or a JSON dataset spec; {value!r} is none of them ({err})."
        ) from err
    if not isinstance(spec, dict):
        raise InvalidConfig(f'--dataset JSON must be an object such as {{"kind": "shapes"}}, not {spec!r}.')
    return spec
